namespace KmsPlugin.Core.Protocol;

/// <summary>
/// The limits kube-apiserver enforces on what a KMS v2 plugin returns
/// (apiserver/pkg/storage/value/encrypt/envelope/kmsv2/envelope.go; kmsv2-protocol.md section 2.4).
/// </summary>
public static class ApiserverLimits
{
    /// <summary><c>encryptedDEKSourceMaxSize = 1 * 1024</c>: Encrypt's ciphertext must be 1..1024 bytes.</summary>
    public const int MaxCiphertextBytes = 1024;

    /// <summary><c>KeyIDMaxSize = 1 * 1024</c>: key_id must be 1..1024 bytes.</summary>
    public const int MaxKeyIdBytes = 1024;

    /// <summary><c>annotationsMaxSize = 32 * 1024</c>: sum of len(key)+len(value) over all annotations.</summary>
    public const int MaxAnnotationsBytes = 32 * 1024;

    /// <summary>The apiserver only ever sends a 32-byte seed (1.29+) or AES-256 key (1.27/1.28) to Encrypt.</summary>
    public const int ApiserverSeedBytes = 32;
}
