using Grpc.Core;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Grpc;

/// <summary>The one place where a typed plugin error becomes a gRPC status code (DESIGN.md section 2, Transport).</summary>
public static class GrpcErrorMapping
{
    public static StatusCode ToStatusCode(KmsErrorKind kind) => kind switch
    {
        KmsErrorKind.InvalidRequest => StatusCode.InvalidArgument,
        KmsErrorKind.UnknownKeyId => StatusCode.FailedPrecondition,
        KmsErrorKind.Corruption => StatusCode.DataLoss,
        KmsErrorKind.RootKeyDenied => StatusCode.FailedPrecondition,
        KmsErrorKind.RootKeyUnavailable => StatusCode.Unavailable,
        KmsErrorKind.Throttled => StatusCode.ResourceExhausted,
        KmsErrorKind.DeadlineExceeded => StatusCode.DeadlineExceeded,
        _ => StatusCode.Internal,
    };
}
