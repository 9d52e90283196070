using System.Security.Cryptography;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Storage.Format;

/// <summary>
/// DEK source type 1, <c>HKDF_SHA256_XNONCE_AES_GCM_SEED</c> (kube-apiserver 1.29+; 1.28 with KMSv2KDF):
/// apiserver/pkg/storage/value/encrypt/aes/aes_extended_nonce.go. The plugin's Decrypt returns a 32-byte seed; every
/// write draws a fresh 32-byte <c>info</c> and derives its own DEK = HKDF-Expand(SHA-256, PRK = seed, info, 32)
/// (Expand only: no Extract, no salt), then seals with AES-256-GCM under a random 12-byte nonce and AAD = the etcd key.
/// Layout of <c>encryptedData</c>: info(32) ‖ nonce(12) ‖ ciphertext ‖ tag(16).
/// </summary>
public static class ExtendedNonceGcm
{
    public const int SeedBytes = 32;
    public const int InfoBytes = 32;
    public const int NonceBytes = 12;
    public const int TagBytes = 16;
    public const int KeyBytes = 32;

    /// <summary>The DEK for one object: HKDF-Expand(SHA-256, seed, info, 32) (RFC 5869 section 2.3).</summary>
    public static void DeriveKey(ReadOnlySpan<byte> seed, ReadOnlySpan<byte> info, Span<byte> key)
    {
        CheckSeed(seed);
        if (info.Length != InfoBytes)
        {
            throw new ArgumentException($"info must be {InfoBytes} bytes", nameof(info));
        }

        if (key.Length != KeyBytes)
        {
            throw new ArgumentException($"key must be {KeyBytes} bytes", nameof(key));
        }

        HKDF.Expand(HashAlgorithmName.SHA256, seed, key, info);
    }

    /// <summary>Encrypts as a 1.29+ apiserver does: fresh random info and nonce.</summary>
    public static byte[] Seal(ReadOnlySpan<byte> seed, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        Span<byte> info = stackalloc byte[InfoBytes];
        Span<byte> nonce = stackalloc byte[NonceBytes];
        RandomNumberGenerator.Fill(info);
        RandomNumberGenerator.Fill(nonce);
        return Seal(seed, info, nonce, plaintext, associatedData);
    }

    /// <summary>Encrypts with the given info and nonce (deterministic; for reproducing recorded vectors).</summary>
    public static byte[] Seal(ReadOnlySpan<byte> seed, ReadOnlySpan<byte> info, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext,
        ReadOnlySpan<byte> associatedData)
    {
        if (nonce.Length != NonceBytes)
        {
            throw new ArgumentException($"nonce must be {NonceBytes} bytes", nameof(nonce));
        }

        var output = new byte[InfoBytes + NonceBytes + plaintext.Length + TagBytes];
        Span<byte> key = stackalloc byte[KeyBytes];
        try
        {
            DeriveKey(seed, info, key);
            info.CopyTo(output);
            nonce.CopyTo(output.AsSpan(InfoBytes));
            using var aes = new AesGcm(key, TagBytes);
            aes.Encrypt(nonce, plaintext, output.AsSpan(InfoBytes + NonceBytes, plaintext.Length), output.AsSpan(output.Length - TagBytes), associatedData);
            return output;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>Decrypts <paramref name="data"/>; the caller owns (and should zero) the returned plaintext.</summary>
    /// <exception cref="KmsPluginException">Corruption when the data is too short or does not authenticate.</exception>
    public static byte[] Open(ReadOnlySpan<byte> seed, ReadOnlySpan<byte> data, ReadOnlySpan<byte> associatedData)
    {
        if (data.Length < InfoBytes + NonceBytes + TagBytes)
        {
            throw new KmsPluginException(KmsErrorKind.Corruption,
                $"encrypted data is {data.Length} bytes, shorter than info, nonce and tag ({InfoBytes + NonceBytes + TagBytes})");
        }

        Span<byte> key = stackalloc byte[KeyBytes];
        try
        {
            DeriveKey(seed, data[..InfoBytes], key);
            return StandardGcm.Open(key, data[InfoBytes..], associatedData);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    private static void CheckSeed(ReadOnlySpan<byte> seed)
    {
        // aes_extended_nonce.go requires exactly a 32-byte seed (the apiserver always generates 32 bytes).
        if (seed.Length != SeedBytes)
        {
            throw new KmsPluginException(KmsErrorKind.Corruption, $"the DEK seed is {seed.Length} bytes, not {SeedBytes}");
        }
    }
}
