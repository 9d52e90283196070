using Grpc.Core;
using Grpc.Core.Interceptors;
using KmsPlugin.Core.Errors;
using KmsPlugin.Protocol.V2;

namespace KmsPlugin.Grpc;

/// <summary>
/// Turns every failure of a call into a gRPC status with a message an operator can act on, and logs it with the
/// request uid. Unexpected exceptions become Internal with a generic message: their text could carry anything.
/// </summary>
public sealed partial class ErrorMappingInterceptor(ILogger<ErrorMappingInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(continuation);
        try
        {
            return await continuation(request, context);
        }
        catch (KmsPluginException e)
        {
            var code = GrpcErrorMapping.ToStatusCode(e.Kind);
            LogRejected(logger, context.Method, Uid(request), code, e.Message);
            throw new RpcException(new Status(code, e.Message));
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            var expired = context.Deadline <= DateTime.UtcNow;
            LogCancelled(logger, context.Method, Uid(request), expired ? "deadline exceeded" : "cancelled by the client");
            throw new RpcException(expired
                ? new Status(StatusCode.DeadlineExceeded, "the request deadline passed before the plugin finished")
                : new Status(StatusCode.Cancelled, "the client cancelled the request"));
        }
        catch (Exception e) when (e is not RpcException)
        {
            LogFailed(logger, e, context.Method, Uid(request));
            throw new RpcException(new Status(StatusCode.Internal, $"internal error in the KMS plugin (request uid {Uid(request)}); see the plugin log"));
        }
    }

    private static string Uid<TRequest>(TRequest request) => request switch
    {
        EncryptRequest encrypt => Printable(encrypt.Uid),
        DecryptRequest decrypt => Printable(decrypt.Uid),
        _ => "-",
    };

    // uid is caller-chosen text; keep log lines short and single-line.
    private static string Printable(string uid) =>
        uid.Length == 0 ? "-" : new string(uid.Take(64).Select(c => char.IsControl(c) ? '?' : c).ToArray());

    [LoggerMessage(EventId = 100, Level = LogLevel.Warning, Message = "{Method} uid={Uid} rejected with {Code}: {Reason}")]
    private static partial void LogRejected(ILogger logger, string method, string uid, StatusCode code, string reason);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "{Method} uid={Uid} stopped: {Reason}")]
    private static partial void LogCancelled(ILogger logger, string method, string uid, string reason);

    [LoggerMessage(EventId = 102, Level = LogLevel.Error, Message = "{Method} uid={Uid} failed unexpectedly")]
    private static partial void LogFailed(ILogger logger, Exception exception, string method, string uid);
}
