using System.Security.Cryptography;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Storage.Format;

/// <summary>
/// AES-GCM as kube-apiserver's <c>NewGCMTransformer</c> stores it (apiserver/pkg/storage/value/encrypt/aes/aes.go):
/// nonce(12) ‖ ciphertext ‖ tag(16), AAD = the etcd key. Used directly by DEK source type 0, <c>AES_GCM_KEY</c>
/// (1.27, and 1.28 with KMSv2KDF off), where the plugin's Decrypt returns the DEK itself; type 1 uses it after
/// deriving the per-object key. Readers accept any nonce (the 1.27 writer used 4 random bytes and a counter).
/// </summary>
public static class StandardGcm
{
    public const int NonceBytes = 12;
    public const int TagBytes = 16;

    /// <summary>Encrypts under a random nonce, as a reader of type 0 data would accept it.</summary>
    public static byte[] Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        Span<byte> nonce = stackalloc byte[NonceBytes];
        RandomNumberGenerator.Fill(nonce);
        return Seal(key, nonce, plaintext, associatedData);
    }

    /// <summary>Encrypts under the given nonce (deterministic; for reproducing recorded vectors).</summary>
    public static byte[] Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        CheckKey(key);
        if (nonce.Length != NonceBytes)
        {
            throw new ArgumentException($"nonce must be {NonceBytes} bytes", nameof(nonce));
        }

        var output = new byte[NonceBytes + plaintext.Length + TagBytes];
        nonce.CopyTo(output);
        using var aes = new AesGcm(key, TagBytes);
        aes.Encrypt(nonce, plaintext, output.AsSpan(NonceBytes, plaintext.Length), output.AsSpan(output.Length - TagBytes), associatedData);
        return output;
    }

    /// <summary>Decrypts; the caller owns (and should zero) the returned plaintext.</summary>
    /// <exception cref="KmsPluginException">Corruption when the data is too short or does not authenticate.</exception>
    public static byte[] Open(ReadOnlySpan<byte> key, ReadOnlySpan<byte> data, ReadOnlySpan<byte> associatedData)
    {
        CheckKey(key);
        if (data.Length < NonceBytes + TagBytes)
        {
            throw new KmsPluginException(KmsErrorKind.Corruption, $"encrypted data is {data.Length} bytes, shorter than nonce and tag ({NonceBytes + TagBytes})");
        }

        var plaintext = new byte[data.Length - NonceBytes - TagBytes];
        try
        {
            using var aes = new AesGcm(key, TagBytes);
            aes.Decrypt(data[..NonceBytes], data[NonceBytes..^TagBytes], data[^TagBytes..], plaintext, associatedData);
            return plaintext;
        }
        catch (AuthenticationTagMismatchException e)
        {
            CryptographicOperations.ZeroMemory(plaintext);
            throw new KmsPluginException(KmsErrorKind.Corruption,
                "the encrypted data does not authenticate under this key and etcd key (wrong DEK, wrong etcd key, or tampered)", e);
        }
    }

    private static void CheckKey(ReadOnlySpan<byte> key)
    {
        // aes.NewCipher accepts AES-128/192/256 keys; the apiserver generates 32 bytes, older recorded tests use 16.
        if (key.Length is not (16 or 24 or 32))
        {
            throw new KmsPluginException(KmsErrorKind.Corruption, $"an AES key is 16, 24 or 32 bytes, not {key.Length}");
        }
    }
}
