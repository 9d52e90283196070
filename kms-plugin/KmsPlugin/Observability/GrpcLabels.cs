using System.Collections.Concurrent;
using Grpc.Core;

namespace KmsPlugin.Observability;

/// <summary>
/// Label values for gRPC calls, computed once per method or code so that recording a call allocates nothing. The
/// set is bounded: interceptors only run for the methods the server registered (an unknown path is answered
/// Unimplemented by gRPC before any interceptor), and status codes are the 17 of the gRPC spec.
/// </summary>
internal static class GrpcLabels
{
    private static readonly ConcurrentDictionary<string, (string Api, string Method)> Methods = new(StringComparer.Ordinal);

    private static readonly string[] Codes = Enumerable.Range(0, 17).Select(c => ((StatusCode)c).ToString()).ToArray();

    /// <summary>
    /// <c>/v2.KeyManagementService/Encrypt</c> → (<c>v2</c>, <c>Encrypt</c>): the proto package (the KMS API
    /// version, so v1beta1 and v2 traffic can be told apart) and the method name.
    /// </summary>
    public static (string Api, string Method) Method(string fullMethod) => Methods.GetOrAdd(fullMethod, static path =>
    {
        var slash = path.LastIndexOf('/');
        var service = path[..Math.Max(slash, 0)].TrimStart('/');
        var dot = service.IndexOf('.', StringComparison.Ordinal);
        return (dot > 0 ? service[..dot] : service, path[(slash + 1)..]);
    });

    /// <summary>The status code's name as grpc-dotnet spells it (<c>OK</c>, <c>InvalidArgument</c>, <c>DataLoss</c>...).</summary>
    public static string Code(StatusCode code) => (uint)code < (uint)Codes.Length ? Codes[(int)code] : code.ToString();
}
