namespace KmsPlugin.Core.Errors;

/// <summary>
/// What went wrong, in the classes an operator acts on. Each kind maps to exactly one gRPC status code
/// (see KmsPlugin's GrpcErrorMapper); the classes follow aws-encryption-provider's ParseError split
/// (user-induced / throttled / corruption / other) with the request-validation class added.
/// </summary>
public enum KmsErrorKind
{
    /// <summary>The request itself is malformed: sizes, missing or foreign annotations, bad format. gRPC InvalidArgument.</summary>
    InvalidRequest,

    /// <summary>The request names a key_id this plugin does not have configured. gRPC FailedPrecondition.</summary>
    UnknownKeyId,

    /// <summary>Well-formed data that fails authentication (tampered, swapped or corrupted). gRPC DataLoss.</summary>
    Corruption,

    /// <summary>The root key refused for a reason a retry will not fix (wrong PIN, permission denied, key disabled). gRPC FailedPrecondition.</summary>
    RootKeyDenied,

    /// <summary>The root key cannot be reached right now (HSM token missing, network, outage). gRPC Unavailable.</summary>
    RootKeyUnavailable,

    /// <summary>The root key backend is throttling us. gRPC ResourceExhausted.</summary>
    Throttled,

    /// <summary>The caller's deadline passed before the work finished. gRPC DeadlineExceeded.</summary>
    DeadlineExceeded,

    /// <summary>A bug or an invariant the plugin broke itself. gRPC Internal.</summary>
    Internal,
}
