using System.Net;
using System.Net.Sockets;
using Amazon.Runtime;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Aws;

/// <summary>
/// The one place that turns AWS SDK failures into <see cref="KmsErrorKind"/>s, following aws-encryption-provider's
/// split (user-induced / throttled / corruption / other). Classification is by the error code in the response body
/// (<c>__type</c>), because SDK v4 has no typed exception for some codes, ThrottlingException among them
/// (reference/feasibility.md section 3), and the same codes come back from STS.
/// Messages carry AWS's error code and message (key ARNs, principal ARNs: not secret), never request bodies.
/// </summary>
internal static class AwsErrorClassifier
{
    // KMS API reference, "Common Errors" and each action's "Errors"; STS AssumeRoleWithWebIdentity "Errors".
    private static readonly HashSet<string> DeniedCodes = new(StringComparer.Ordinal)
    {
        "AccessDeniedException", "AccessDenied", "NotFoundException", "DisabledException", "KMSInvalidStateException",
        "InvalidKeyUsageException", "InvalidGrantTokenException", "InvalidArnException", "UnsupportedOperationException",
        "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignature", "MissingAuthenticationToken",
        "InvalidClientTokenId", "OptInRequired", "ValidationException", "InvalidParameterValue", "InvalidParameterCombination",
        "CustomKeyStoreNotFoundException", "XksKeyNotFoundException", "XksKeyInvalidConfigurationException",
        "XksProxyIncorrectAuthenticationCredentialException", "InvalidIdentityToken", "IDPRejectedClaim", "RegionDisabledException",
        "MalformedPolicyDocument", "PackedPolicyTooLarge",
    };

    private static readonly HashSet<string> ThrottledCodes = new(StringComparer.Ordinal)
    {
        "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded", "LimitExceededException",
        "SlowDown", "ProvisionedThroughputExceededException", "RequestThrottled",
    };

    private static readonly HashSet<string> CorruptionCodes = new(StringComparer.Ordinal)
    {
        "InvalidCiphertextException", "IncorrectKeyException",
    };

    private static readonly HashSet<string> UnavailableCodes = new(StringComparer.Ordinal)
    {
        "KMSInternalException", "DependencyTimeoutException", "KeyUnavailableException", "InternalFailure", "ServiceUnavailable",
        "InternalError", "RequestTimeout", "RequestTimeoutException", "RequestExpired", "ExpiredTokenException",
        "IDPCommunicationError", "CustomKeyStoreInvalidStateException", "XksProxyUriUnreachableException",
        "XksProxyInvalidResponseException", "CloudHsmClusterNotActiveException",
    };

    /// <summary>Kind of an AWS error code, or null when the code alone does not say (then the HTTP status decides).</summary>
    public static KmsErrorKind? ClassifyCode(string? code)
    {
        if (string.IsNullOrEmpty(code))
        {
            return null;
        }

        // Some protocols send a namespaced code (com.amazonaws.kms#DisabledException).
        var hash = code.LastIndexOf('#');
        if (hash >= 0)
        {
            code = code[(hash + 1)..];
        }

        if (ThrottledCodes.Contains(code))
        {
            return KmsErrorKind.Throttled;
        }

        if (CorruptionCodes.Contains(code))
        {
            return KmsErrorKind.Corruption;
        }

        if (DeniedCodes.Contains(code))
        {
            return KmsErrorKind.RootKeyDenied;
        }

        return UnavailableCodes.Contains(code) ? KmsErrorKind.RootKeyUnavailable : null;
    }

    public static KmsErrorKind ClassifyStatus(HttpStatusCode status) => (int)status switch
    {
        429 => KmsErrorKind.Throttled,
        >= 500 => KmsErrorKind.RootKeyUnavailable,
        408 => KmsErrorKind.RootKeyUnavailable,
        >= 400 => KmsErrorKind.RootKeyDenied,

        // A response the SDK could not read (status 200 with a broken body, or no status at all): a retry may get a good one.
        _ => KmsErrorKind.RootKeyUnavailable,
    };

    /// <summary>
    /// A typed error for a failed SDK call. Callers must let <see cref="OperationCanceledException"/> through first
    /// when their own token was cancelled: that is the gRPC deadline, not a KMS failure.
    /// </summary>
    public static KmsPluginException ToException(string rootKeyName, string operation, Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);

        // Our web-identity credentials raise typed errors from inside the SDK's pipeline; keep them as they are.
        for (var inner = error; inner is not null; inner = inner.InnerException)
        {
            if (inner is KmsPluginException typed)
            {
                return new KmsPluginException(typed.Kind, $"aws root key '{rootKeyName}': {operation}: {StripPrefix(typed.Message, rootKeyName)}", error);
            }
        }

        switch (error)
        {
            case AmazonUnmarshallingException:
                return new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                    $"aws root key '{rootKeyName}': {operation} failed: the response from KMS could not be read (status {(int)((AmazonServiceException)error).StatusCode})", error);

            case AmazonServiceException service:
            {
                var kind = ClassifyCode(service.ErrorCode) ?? ClassifyStatus(service.StatusCode);
                var code = string.IsNullOrEmpty(service.ErrorCode) ? $"HTTP {(int)service.StatusCode}" : service.ErrorCode;
                return new KmsPluginException(kind, $"aws root key '{rootKeyName}': {operation} failed: {code}: {OneLine(service.Message)}", error);
            }

            case TimeoutException or OperationCanceledException:
                // The attempt's requestTimeout (AwsKmsRootKey.CallAsync) or the SDK's backstop Timeout; never the
                // caller's token (checked first).
                return new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                    $"aws root key '{rootKeyName}': {operation} timed out (requestTimeout)", error);

            case HttpRequestException or IOException or SocketException or WebException:
                return new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                    $"aws root key '{rootKeyName}': {operation} failed: cannot reach KMS: {OneLine(Innermost(error).Message)}", error);

            case AmazonClientException client:
                // Client-side failures: no credentials found in the chain, no region, a failed credential endpoint.
                // Most are configuration, but an unreachable IMDS/Pod Identity agent is transient: report it as
                // unavailable so the probe keeps retrying, with the SDK's explanation.
                return new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                    $"aws root key '{rootKeyName}': {operation} failed: {OneLine(client.Message)}", error);

            default:
                return new KmsPluginException(KmsErrorKind.Internal,
                    $"aws root key '{rootKeyName}': {operation} failed unexpectedly: {error.GetType().Name}", error);
        }
    }

    private static Exception Innermost(Exception error)
    {
        while (error.InnerException is not null)
        {
            error = error.InnerException;
        }

        return error;
    }

    private static string StripPrefix(string message, string rootKeyName)
    {
        var prefix = $"aws root key '{rootKeyName}': ";
        return message.StartsWith(prefix, StringComparison.Ordinal) ? message[prefix.Length..] : message;
    }

    /// <summary>AWS messages are single sentences, but multi-line ones (the credential chain's report) are folded for logs and healthz.</summary>
    private static string OneLine(string message) =>
        string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
