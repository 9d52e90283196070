using System.Security.Cryptography;
using System.Text;

namespace KmsPlugin.Azure;

/// <summary>
/// The wrapped-KEK format of the <c>azure</c> provider:
/// <c>format(1) ‖ algorithm(1) ‖ versionLength(1) ‖ keyVersion(ASCII) ‖ Key Vault wrapkey output</c>.
/// The key version is recorded so a blob made before a rotation is unwrapped by the version that made it (Key Vault
/// unwrapkey needs the version; a versionless key's newest version moves on).
/// </summary>
/// <remarks>
/// <para><b>Binding the associated data.</b> Key Vault's RSA-OAEP-256 and A256KW take no associated data (the OAEP
/// label is fixed empty by the REST API). The plugin's associated data (it names the key_id the KEK serves) is
/// therefore bound <em>inside</em> the wrapped plaintext: Key Vault wraps <c>SHA-256(domain ‖ header ‖ aad ‖ KEK) ‖ KEK</c>
/// (see <see cref="Digest"/>), and unwrap accepts the result only if its first 32 bytes equal the digest recomputed
/// from the blob's header, the caller's associated data and the unwrapped KEK (compared in constant time).</para>
/// <para>Why this is sound: RSA-OAEP is IND-CCA2 (RFC 8017 section 7.1) and AES key wrap is a deterministic
/// authenticated encryption whose integrity check covers every input block (RFC 3394 section 2.2.3), so nobody can
/// change the digest inside a wrapped blob without the key; moving a blob to another key_id, or editing its header
/// (another key version or algorithm), makes the digests differ and unwrap fails as Corruption. The header is in the
/// digest, so it is authenticated although it travels in clear. An HMAC over the blob keyed with the KEK would give
/// the same binding for 32 more bytes outside the wrap; the prefix costs nothing (an RSA block has room for it) and
/// keeps a single check.</para>
/// <para>Limit, inherent to RSA: anyone holding the public key can wrap a KEK of their own choosing for any associated
/// data. That does not let them read or move existing data; it only matters to an attacker who can already write to
/// etcd. Managed HSM's A256KW has no public half and does not have this limit.</para>
/// </remarks>
internal static class AzureWrappedBlob
{
    public const byte Format = 0x01;
    public const int DigestBytes = SHA256.HashSizeInBytes;
    private static readonly byte[] Domain = "k8s-kms-plugin/azure-wrap/v1\n"u8.ToArray();

    /// <summary>The clear header: format, algorithm, key version.</summary>
    public static byte[] Header(string algorithm, string keyVersion)
    {
        var version = Encoding.ASCII.GetBytes(keyVersion);
        var header = new byte[3 + version.Length];
        header[0] = Format;
        header[1] = KeyVaultAlgorithms.ToByte(algorithm);
        header[2] = checked((byte)version.Length);
        version.CopyTo(header, 3);
        return header;
    }

    public static byte[] Compose(ReadOnlySpan<byte> header, ReadOnlySpan<byte> wrapped)
    {
        var blob = new byte[header.Length + wrapped.Length];
        header.CopyTo(blob);
        wrapped.CopyTo(blob.AsSpan(header.Length));
        return blob;
    }

    /// <summary>Splits a blob; false when it is malformed or names a format or algorithm this build does not know.</summary>
    public static bool TryParse(ReadOnlySpan<byte> blob, out string algorithm, out string keyVersion, out int headerLength)
    {
        algorithm = keyVersion = "";
        headerLength = 0;
        if (blob.Length < 4 || blob[0] != Format || KeyVaultAlgorithms.FromByte(blob[1]) is not { } alg)
        {
            return false;
        }

        var versionLength = blob[2];
        if (versionLength == 0 || blob.Length <= 3 + versionLength)
        {
            return false;
        }

        var version = Encoding.ASCII.GetString(blob.Slice(3, versionLength));
        if (!KeyVaultKeyIdentifier.IsValidVersion(version))
        {
            return false;
        }

        algorithm = alg;
        keyVersion = version;
        headerLength = 3 + versionLength;
        return true;
    }

    /// <summary>
    /// SHA-256(domain ‖ header ‖ len32(associatedData) ‖ associatedData ‖ KEK). The header is self-delimiting and the
    /// associated data length-prefixed, so the concatenation is unambiguous. The KEK is in the digest too, so a KEK
    /// altered anywhere between wrap and unwrap is caught here rather than later as an unreadable seed.
    /// </summary>
    public static void Digest(ReadOnlySpan<byte> header, ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> kek, Span<byte> digest)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> length = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(length, associatedData.Length);
        hash.AppendData(Domain);
        hash.AppendData(header);
        hash.AppendData(length);
        hash.AppendData(associatedData);
        hash.AppendData(kek);
        if (!hash.TryGetHashAndReset(digest, out var written) || written != DigestBytes)
        {
            throw new CryptographicException("SHA-256 produced an unexpected length");
        }
    }
}
