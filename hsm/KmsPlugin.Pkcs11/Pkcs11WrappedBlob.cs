namespace KmsPlugin.Pkcs11;

/// <summary>
/// The wrapped-KEK format of the PKCS#11 provider:
/// <c>format(1) ‖ IV(12) ‖ ciphertext ‖ tag(16)</c>, where format <c>0x01</c> means CKM_AES_GCM (PKCS#11 v2.40
/// section 2.11.2; NIST SP 800-38D) with a random 96-bit IV and a 128-bit tag, and the GCM AAD is
/// <c>format ‖ associatedData</c> so the header byte is authenticated too and cannot be swapped for a future format.
/// </summary>
internal static class Pkcs11WrappedBlob
{
    public const byte AesGcmFormat = 0x01;

    /// <summary>96 bits: the IV length SP 800-38D section 5.2.1.1 recommends (used directly as J0, no GHASH).</summary>
    public const int IvBytes = 12;

    /// <summary>128 bits: the full GCM tag (SP 800-38D section 5.2.1.2).</summary>
    public const int TagBytes = 16;

    public const int HeaderBytes = 1 + IvBytes;

    /// <summary>Smallest valid blob: header, one byte of ciphertext, tag.</summary>
    public const int MinLength = HeaderBytes + 1 + TagBytes;

    public static byte[] Compose(ReadOnlySpan<byte> iv, ReadOnlySpan<byte> ciphertextAndTag)
    {
        var blob = new byte[HeaderBytes + ciphertextAndTag.Length];
        blob[0] = AesGcmFormat;
        iv.CopyTo(blob.AsSpan(1, IvBytes));
        ciphertextAndTag.CopyTo(blob.AsSpan(HeaderBytes));
        return blob;
    }

    /// <summary>Splits a blob; false when it is too short or names a format this build does not know.</summary>
    public static bool TryParse(ReadOnlySpan<byte> blob, out ReadOnlySpan<byte> iv, out ReadOnlySpan<byte> ciphertextAndTag)
    {
        if (blob.Length < MinLength || blob[0] != AesGcmFormat)
        {
            iv = default;
            ciphertextAndTag = default;
            return false;
        }

        iv = blob.Slice(1, IvBytes);
        ciphertextAndTag = blob[HeaderBytes..];
        return true;
    }

    /// <summary>The GCM additional authenticated data: the format byte, then the caller's associated data.</summary>
    public static byte[] AdditionalData(ReadOnlySpan<byte> associatedData)
    {
        var aad = new byte[1 + associatedData.Length];
        aad[0] = AesGcmFormat;
        associatedData.CopyTo(aad.AsSpan(1));
        return aad;
    }
}
