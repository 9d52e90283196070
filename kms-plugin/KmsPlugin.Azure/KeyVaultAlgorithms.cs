namespace KmsPlugin.Azure;

/// <summary>
/// The key-wrap algorithms this provider uses (Key Vault REST "JsonWebKeyEncryptionAlgorithm"), each with the one
/// byte that names it in a wrapped blob. RSA-OAEP-256 (RFC 8017 OAEP with SHA-256, RFC 7518 section 4.3) wraps with
/// a Key Vault RSA key; A256KW (RFC 3394 AES key wrap, RFC 7518 section 4.4) with a Managed HSM AES-256 key.
/// RSA1_5 and SHA-1 OAEP are deliberately not offered.
/// </summary>
internal static class KeyVaultAlgorithms
{
    public const string RsaOaep256 = "RSA-OAEP-256";
    public const string A256Kw = "A256KW";

    public static bool IsSupported(string algorithm) => algorithm is RsaOaep256 or A256Kw;

    public static byte ToByte(string algorithm) => algorithm switch
    {
        RsaOaep256 => 1,
        A256Kw => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, "unsupported algorithm"),
    };

    public static string? FromByte(byte value) => value switch
    {
        1 => RsaOaep256,
        2 => A256Kw,
        _ => null,
    };

    /// <summary>Whether a key of JSON Web Key type <paramref name="keyType"/> (<c>kty</c>) can do <paramref name="algorithm"/>.</summary>
    public static bool Fits(string algorithm, string keyType) => algorithm switch
    {
        RsaOaep256 => keyType is "RSA" or "RSA-HSM",
        A256Kw => keyType is "oct" or "oct-HSM",
        _ => false,
    };

    /// <summary>AES key wrap takes whole 64-bit blocks, at least two (RFC 3394 section 2).</summary>
    public static bool AcceptsLength(string algorithm, int plaintextBytes) =>
        algorithm != A256Kw || (plaintextBytes >= 16 && plaintextBytes % 8 == 0);
}
