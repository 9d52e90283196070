using System.Globalization;
using System.Text;

namespace KmsPlugin.Vault;

/// <summary>
/// Transit ciphertexts (<c>vault:v{N}:{base64}</c>; OpenBao keeps the <c>vault:</c> prefix for compatibility) and the
/// provider's wrapped-KEK format: <c>format(1) ‖ ASCII ciphertext</c>, format <c>0x01</c> = Transit AEAD encrypt with
/// the associated data bound through <c>associated_data</c>.
/// </summary>
internal static class VaultCiphertext
{
    public const byte TransitAeadV1 = 0x01;

    /// <summary>Far above a Transit ciphertext of a 32-byte KEK (about 90 characters).</summary>
    public const int MaxCiphertextChars = 2048;

    private const string Prefix = "vault:v";

    /// <summary>The key version a Transit ciphertext names; false when it is not one.</summary>
    public static bool TryParseVersion(string ciphertext, out int version)
    {
        version = 0;
        if (!ciphertext.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        var colon = ciphertext.IndexOf(':', Prefix.Length);
        return colon > Prefix.Length && colon < ciphertext.Length - 1
            && int.TryParse(ciphertext.AsSpan(Prefix.Length, colon - Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out version)
            && version > 0;
    }

    public static byte[] Compose(string ciphertext)
    {
        var blob = new byte[1 + Encoding.ASCII.GetByteCount(ciphertext)];
        blob[0] = TransitAeadV1;
        Encoding.ASCII.GetBytes(ciphertext, blob.AsSpan(1));
        return blob;
    }

    /// <summary>The Transit ciphertext inside a blob and its version; false for anything else.</summary>
    public static bool TryParse(ReadOnlySpan<byte> blob, out string ciphertext, out int version)
    {
        ciphertext = "";
        if (!TryReadVersion(blob, out version))
        {
            return false;
        }

        ciphertext = Encoding.ASCII.GetString(blob[1..]);
        return true;
    }

    /// <summary>
    /// The key version a blob's <c>vault:vN:</c> prefix names, without allocating: safe on any input (it never throws,
    /// reads at most <see cref="MaxCiphertextChars"/> + 1 bytes) because it runs on wrapped KEKs taken from etcd before
    /// anything is sent to Vault (<see cref="VaultTransitRootKey.Recognizes"/>).
    /// </summary>
    public static bool TryReadVersion(ReadOnlySpan<byte> blob, out int version)
    {
        version = 0;
        if (blob.Length < 2 || blob.Length > 1 + MaxCiphertextChars || blob[0] != TransitAeadV1)
        {
            return false;
        }

        var text = blob[1..];
        if (text.ContainsAnyExceptInRange((byte)0x21, (byte)0x7e))
        {
            return false; // Transit ciphertexts are printable ASCII without spaces
        }

        if (!text.StartsWith(PrefixBytes))
        {
            return false;
        }

        var rest = text[PrefixBytes.Length..];
        var colon = rest.IndexOf((byte)':');

        // Digits only (NumberStyles.None: no sign, no spaces), then at least one character of ciphertext.
        return colon > 0 && colon < rest.Length - 1
            && int.TryParse(rest[..colon], NumberStyles.None, CultureInfo.InvariantCulture, out version)
            && version > 0;
    }

    private static ReadOnlySpan<byte> PrefixBytes => "vault:v"u8;
}
