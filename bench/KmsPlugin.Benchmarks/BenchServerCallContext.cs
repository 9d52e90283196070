using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace KmsPlugin.Benchmarks;

/// <summary>
/// A ServerCallContext for calling the gRPC service methods directly. It carries an HttpContext the way
/// Grpc.AspNetCore's GetHttpContext() looks for one outside a real server (UserState["__HttpContext"]).
/// </summary>
internal sealed class BenchServerCallContext : ServerCallContext
{
    private readonly Metadata _headers = [];
    private readonly Metadata _trailers = [];

    public BenchServerCallContext(string method)
    {
        MethodCore = method;
        UserState["__HttpContext"] = new DefaultHttpContext();
    }

    protected override string MethodCore { get; }

    protected override string HostCore => "localhost";

    protected override string PeerCore => "unix:bench";

    protected override DateTime DeadlineCore => DateTime.MaxValue;

    protected override Metadata RequestHeadersCore => _headers;

    protected override CancellationToken CancellationTokenCore => CancellationToken.None;

    protected override Metadata ResponseTrailersCore => _trailers;

    protected override Status StatusCore { get; set; }

    protected override WriteOptions? WriteOptionsCore { get; set; }

    protected override AuthContext AuthContextCore { get; } = new(null, []);

    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();

    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
}
