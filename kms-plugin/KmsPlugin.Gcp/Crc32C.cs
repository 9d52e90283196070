using System.IO.Hashing;

namespace KmsPlugin.Gcp;

/// <summary>
/// CRC32C (Castagnoli) as Cloud KMS uses it for its integrity fields ("Verifying end-to-end data integrity":
/// <c>plaintext_crc32c</c>, <c>ciphertext_crc32c</c>, ...), from System.IO.Hashing 11.0.0. Check value of
/// "123456789" is 0xE3069283.
/// </summary>
internal static class Crc32C
{
    public static uint Of(ReadOnlySpan<byte> data) => Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, data);
}
