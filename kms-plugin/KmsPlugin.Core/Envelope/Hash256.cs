using System.Buffers.Binary;
using System.Security.Cryptography;

namespace KmsPlugin.Core.Envelope;

/// <summary>A SHA-256 value as a value type, so it can key dictionaries without allocating strings.</summary>
internal readonly record struct Hash256(ulong A, ulong B, ulong C, ulong D)
{
    public static Hash256 Of(ReadOnlySpan<byte> data)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(data, hash);
        return From(hash);
    }

    public static Hash256 From(ReadOnlySpan<byte> hash) => new(
        BinaryPrimitives.ReadUInt64BigEndian(hash),
        BinaryPrimitives.ReadUInt64BigEndian(hash[8..]),
        BinaryPrimitives.ReadUInt64BigEndian(hash[16..]),
        BinaryPrimitives.ReadUInt64BigEndian(hash[24..]));

    /// <summary>The first 16 bytes, as carried in the sealed format's KEK reference.</summary>
    public void WritePrefix16(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, A);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], B);
    }

    public bool PrefixEquals(ReadOnlySpan<byte> prefix16) =>
        BinaryPrimitives.ReadUInt64BigEndian(prefix16) == A && BinaryPrimitives.ReadUInt64BigEndian(prefix16[8..]) == B;
}
