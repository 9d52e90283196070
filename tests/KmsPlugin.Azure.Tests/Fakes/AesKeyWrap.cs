using System.Buffers.Binary;
using System.Security.Cryptography;

namespace KmsPlugin.Azure.Tests.Fakes;

/// <summary>
/// AES key wrap (RFC 3394 section 2.2, the A256KW of RFC 7518 section 4.4) for the fake Managed HSM. .NET ships only
/// the padded variant (RFC 5649), whose output differs, so the fake implements the unpadded one from the RFC.
/// </summary>
internal static class AesKeyWrap
{
    private const ulong DefaultIv = 0xA6A6A6A6A6A6A6A6;

    public static byte[] Wrap(byte[] key, ReadOnlySpan<byte> plaintext)
    {
        if (plaintext.Length < 16 || plaintext.Length % 8 != 0)
        {
            throw new ArgumentException("AES key wrap takes whole 64-bit blocks, at least two", nameof(plaintext));
        }

        using var aes = Aes.Create();
        aes.Key = key;
        var n = plaintext.Length / 8;
        var a = DefaultIv;
        var r = plaintext.ToArray();
        Span<byte> block = stackalloc byte[16];
        for (var j = 0; j <= 5; j++)
        {
            for (var i = 1; i <= n; i++)
            {
                BinaryPrimitives.WriteUInt64BigEndian(block, a);
                r.AsSpan((i - 1) * 8, 8).CopyTo(block[8..]);
                aes.EncryptEcb(block, block, PaddingMode.None);
                a = BinaryPrimitives.ReadUInt64BigEndian(block) ^ (ulong)((n * j) + i);
                block[8..].CopyTo(r.AsSpan((i - 1) * 8, 8));
            }
        }

        var output = new byte[8 + r.Length];
        BinaryPrimitives.WriteUInt64BigEndian(output, a);
        r.CopyTo(output, 8);
        return output;
    }

    /// <summary>The plaintext, or null when the integrity check fails.</summary>
    public static byte[]? Unwrap(byte[] key, ReadOnlySpan<byte> ciphertext)
    {
        if (ciphertext.Length < 24 || ciphertext.Length % 8 != 0)
        {
            return null;
        }

        using var aes = Aes.Create();
        aes.Key = key;
        var n = (ciphertext.Length / 8) - 1;
        var a = BinaryPrimitives.ReadUInt64BigEndian(ciphertext);
        var r = ciphertext[8..].ToArray();
        Span<byte> block = stackalloc byte[16];
        for (var j = 5; j >= 0; j--)
        {
            for (var i = n; i >= 1; i--)
            {
                BinaryPrimitives.WriteUInt64BigEndian(block, a ^ (ulong)((n * j) + i));
                r.AsSpan((i - 1) * 8, 8).CopyTo(block[8..]);
                aes.DecryptEcb(block, block, PaddingMode.None);
                a = BinaryPrimitives.ReadUInt64BigEndian(block);
                block[8..].CopyTo(r.AsSpan((i - 1) * 8, 8));
            }
        }

        return a == DefaultIv ? r : null;
    }
}
