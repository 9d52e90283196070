using System.Text;

namespace KmsPlugin.Gcp;

/// <summary>
/// The wrapped-KEK format of the <c>gcp</c> provider: <c>format(1) ‖ versionLength(1) ‖ version(ASCII digits) ‖
/// Cloud KMS ciphertext</c>. The CryptoKeyVersion that encrypted is recorded — so a blob can be matched to the key_id of
/// its version without a remote call (<see cref="GcpKmsRootKey.Recognizes"/>) — and bound into the AAD; Cloud KMS itself
/// finds the version from its ciphertext on decrypt (any enabled version decrypts).
/// </summary>
/// <remarks>
/// Cloud KMS authenticates additional data natively (AES-256-GCM, up to 64 KiB of AAD), so the AAD sent with every
/// encrypt and decrypt is <c>header ‖ associatedData</c>: the plugin's associated data (it names the key_id the KEK
/// serves) plus this blob's header, so neither the key_id nor the recorded version can be swapped without decrypt
/// failing.
/// </remarks>
internal static class GcpWrappedBlob
{
    public const byte Format = 0x01;

    public static byte[] Header(string version)
    {
        var digits = Encoding.ASCII.GetBytes(version);
        var header = new byte[2 + digits.Length];
        header[0] = Format;
        header[1] = checked((byte)digits.Length);
        digits.CopyTo(header, 2);
        return header;
    }

    public static byte[] AdditionalData(ReadOnlySpan<byte> header, ReadOnlySpan<byte> associatedData)
    {
        var aad = new byte[header.Length + associatedData.Length];
        header.CopyTo(aad);
        associatedData.CopyTo(aad.AsSpan(header.Length));
        return aad;
    }

    public static byte[] Compose(ReadOnlySpan<byte> header, ReadOnlySpan<byte> ciphertext)
    {
        var blob = new byte[header.Length + ciphertext.Length];
        header.CopyTo(blob);
        ciphertext.CopyTo(blob.AsSpan(header.Length));
        return blob;
    }

    public static bool TryParse(ReadOnlySpan<byte> blob, out string version, out int headerLength)
    {
        version = "";
        headerLength = 0;
        if (blob.Length < 3 || blob[0] != Format || blob[1] is 0 or > 19 || blob.Length <= 2 + blob[1])
        {
            return false;
        }

        var digits = blob.Slice(2, blob[1]);
        foreach (var b in digits)
        {
            if (b is < (byte)'0' or > (byte)'9')
            {
                return false;
            }
        }

        version = Encoding.ASCII.GetString(digits);
        headerLength = 2 + blob[1];
        return true;
    }
}
