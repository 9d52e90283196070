using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using KmsPlugin.Storage.V2;

namespace KmsPlugin.Storage.Format;

/// <summary>
/// Which stored objects share one encrypted DEK source, decided as the apiserver's DEK cache decides it
/// (kmsv2/cache.go <c>generateCacheKey</c>): SHA-256 of u32(type) ‖ u16-length-prefixed encryptedDEKSource ‖
/// u16-length-prefixed keyID ‖ [u32(count) ‖ sorted (u16-length-prefixed key ‖ u16-length-prefixed value)].
/// After an apiserver restart it sends one Decrypt per distinct identity, so this is also the Decrypt count.
/// </summary>
public static class DekSourceIdentity
{
    /// <summary>Lowercase hex of the cache key. Only for objects that passed <see cref="EncryptedObjectRules"/> (bounded sizes).</summary>
    public static string Of(EncryptedObject encryptedObject)
    {
        ArgumentNullException.ThrowIfNull(encryptedObject);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> u32 = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(u32, (uint)encryptedObject.EncryptedDEKSourceType);
        hash.AppendData(u32);
        AppendLengthPrefixed(hash, encryptedObject.EncryptedDEKSource.Span);
        AppendLengthPrefixed(hash, Encoding.UTF8.GetBytes(encryptedObject.KeyID));
        if (encryptedObject.Annotations.Count > 0)
        {
            BinaryPrimitives.WriteUInt32BigEndian(u32, (uint)encryptedObject.Annotations.Count);
            hash.AppendData(u32);
            foreach (var (key, value) in encryptedObject.Annotations.OrderBy(a => a.Key, StringComparer.Ordinal))
            {
                AppendLengthPrefixed(hash, Encoding.UTF8.GetBytes(key));
                AppendLengthPrefixed(hash, value.Span);
            }
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static void AppendLengthPrefixed(IncrementalHash hash, ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > ushort.MaxValue)
        {
            throw new ArgumentException("a field longer than 65535 bytes cannot be part of the apiserver's cache key");
        }

        Span<byte> u16 = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(u16, (ushort)bytes.Length);
        hash.AppendData(u16);
        hash.AppendData(bytes);
    }
}
