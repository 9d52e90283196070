using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Core.Envelope;

/// <summary>
/// The bytes returned as EncryptResponse.ciphertext (stored by the apiserver as EncryptedObject.encryptedDEKSource):
/// <code>
///   version (1 byte, 0x01) ‖ KEK reference (16) ‖ nonce (12) ‖ AES-256-GCM ciphertext ‖ tag (16)
/// </code>
/// The KEK reference is the first 16 bytes of SHA-256(annotation value), tying the ciphertext to the wrapped KEK it
/// came with. The GCM associated data binds the format version, the KEK reference and the key_id, so a swapped
/// annotation, key_id or version byte fails authentication (NIST SP 800-38D: AAD is authenticated, not encrypted).
/// Nonces are 96 random bits per seal; the per-KEK use limit keeps collisions negligible (SP 800-38D section 8.3).
/// </summary>
internal static class SealedSeedFormat
{
    public const byte Version1 = 0x01;
    public const int KekReferenceBytes = 16;
    public const int NonceBytes = 12;
    public const int HeaderBytes = 1 + KekReferenceBytes;
    public const int Overhead = HeaderBytes + NonceBytes + LocalKek.TagBytes;

    private static readonly byte[] AadLabel = Encoding.ASCII.GetBytes("k8s-kms-plugin/sealed-seed/v1");

    public static byte[] Seal(LocalKek kek, ReadOnlySpan<byte> plaintext, IRandomSource random)
    {
        var output = new byte[Overhead + plaintext.Length];
        output[0] = Version1;
        kek.CacheKey.BlobHash.WritePrefix16(output.AsSpan(1, KekReferenceBytes));
        var nonce = output.AsSpan(HeaderBytes, NonceBytes);
        random.Fill(nonce);

        Span<byte> aad = stackalloc byte[AadLength(kek.CacheKey.KeyId)];
        WriteAad(aad, output.AsSpan(0, HeaderBytes), kek.CacheKey.KeyId);
        kek.Encrypt(nonce, plaintext, output.AsSpan(HeaderBytes + NonceBytes, plaintext.Length), output.AsSpan(output.Length - LocalKek.TagBytes), aad);
        return output;
    }

    /// <summary>Checks the structure of a sealed value before anything else is looked at.</summary>
    public static void CheckStructure(ReadOnlySpan<byte> sealedValue)
    {
        if (sealedValue.IsEmpty)
        {
            throw KmsPluginException.Invalid("ciphertext is empty");
        }

        if (sealedValue[0] != Version1)
        {
            throw KmsPluginException.Invalid($"ciphertext has unknown format version {sealedValue[0]} (this plugin writes version {Version1}, and {DirectSeedFormat.Version2} in direct mode); it was not made by this plugin");
        }

        if (sealedValue.Length <= Overhead)
        {
            throw KmsPluginException.Invalid($"ciphertext is {sealedValue.Length} bytes, too short for format version {Version1}");
        }
    }

    public static ReadOnlySpan<byte> KekReference(ReadOnlySpan<byte> sealedValue) => sealedValue.Slice(1, KekReferenceBytes);

    /// <summary>Opens a structurally checked value; returns the plaintext in a buffer the caller zeroes.</summary>
    public static byte[] Open(LocalKek kek, ReadOnlySpan<byte> sealedValue)
    {
        var plaintext = new byte[sealedValue.Length - Overhead];
        Span<byte> aad = stackalloc byte[AadLength(kek.CacheKey.KeyId)];
        WriteAad(aad, sealedValue[..HeaderBytes], kek.CacheKey.KeyId);
        try
        {
            kek.Decrypt(sealedValue.Slice(HeaderBytes, NonceBytes), sealedValue[(HeaderBytes + NonceBytes)..^LocalKek.TagBytes],
                sealedValue[^LocalKek.TagBytes..], plaintext, aad);
            return plaintext;
        }
        catch (CryptographicException e)
        {
            CryptographicOperations.ZeroMemory(plaintext);
            throw new KmsPluginException(KmsErrorKind.Corruption, "ciphertext failed authentication: it was altered, or its key_id or annotations do not belong to it", e);
        }
    }

    private static int AadLength(string keyId) => AadLabel.Length + HeaderBytes + 2 + Encoding.UTF8.GetByteCount(keyId);

    // AAD = label ‖ version ‖ KEK reference ‖ u16be(len(key_id)) ‖ key_id
    private static void WriteAad(Span<byte> aad, ReadOnlySpan<byte> header, string keyId)
    {
        AadLabel.CopyTo(aad);
        var rest = aad[AadLabel.Length..];
        header.CopyTo(rest);
        rest = rest[HeaderBytes..];
        var keyIdLength = Encoding.UTF8.GetBytes(keyId, rest[2..]);
        BinaryPrimitives.WriteUInt16BigEndian(rest, checked((ushort)keyIdLength));
    }
}
