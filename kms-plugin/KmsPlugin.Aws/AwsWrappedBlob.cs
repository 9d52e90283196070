namespace KmsPlugin.Aws;

/// <summary>
/// The wrapped-KEK format of the aws provider: <c>format(1) ‖ CiphertextBlob</c>. Format <c>0x01</c> means KMS
/// Encrypt with SYMMETRIC_DEFAULT (AES-256-GCM inside KMS) and the encryption context of
/// <see cref="AwsEncryptionContext"/>. The CiphertextBlob is KMS's own opaque format (it names the key and its
/// backing key version, which is why old backing keys keep decrypting after automatic rotation).
/// </summary>
internal static class AwsWrappedBlob
{
    public const byte KmsSymmetricV1 = 0x01;

    /// <summary>KMS ciphertext blobs are 6,144 bytes at most (KMS API reference, Decrypt: CiphertextBlob).</summary>
    public const int MaxCiphertextBytes = 6144;

    public static byte[] Compose(ReadOnlySpan<byte> ciphertextBlob)
    {
        var blob = new byte[1 + ciphertextBlob.Length];
        blob[0] = KmsSymmetricV1;
        ciphertextBlob.CopyTo(blob.AsSpan(1));
        return blob;
    }

    /// <summary>The CiphertextBlob inside a blob; false when it is empty, too large or of a format this build does not know.</summary>
    public static bool TryParse(ReadOnlySpan<byte> blob, out ReadOnlySpan<byte> ciphertextBlob)
    {
        if (blob.Length < 2 || blob.Length > 1 + MaxCiphertextBytes || blob[0] != KmsSymmetricV1)
        {
            ciphertextBlob = default;
            return false;
        }

        ciphertextBlob = blob[1..];
        return true;
    }
}
