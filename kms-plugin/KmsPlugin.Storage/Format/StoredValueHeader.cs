using System.Text;

namespace KmsPlugin.Storage.Format;

/// <summary>
/// What the prefix of an etcd value says: its <see cref="Kind"/>, the key or provider name that follows the kind's
/// prefix (<c>key1</c> in <c>k8s:enc:aescbc:v1:key1:</c>), and where the provider's payload starts.
/// </summary>
/// <param name="Kind">The provider kind.</param>
/// <param name="Name">The key or provider name; null for plaintext, and when the prefix has no closing colon.</param>
/// <param name="PayloadOffset">Index of the first byte after the full prefix (0 for plaintext).</param>
/// <param name="Problem">Why the prefix is malformed, or null.</param>
public readonly record struct StoredValueHeader(StoredValueKind Kind, string? Name, int PayloadOffset, string? Problem)
{
    // A name is printed in reports; the apiserver bounds KMS names, and no real key name is this long.
    private const int MaxNameBytes = 256;

    private static readonly (string Prefix, byte[] Bytes, StoredValueKind Kind)[] Known =
    [
        .. new (string, StoredValueKind)[]
        {
            (StoragePrefixes.KmsV2, StoredValueKind.KmsV2),
            (StoragePrefixes.KmsV1, StoredValueKind.KmsV1),
            (StoragePrefixes.AesCbcV1, StoredValueKind.AesCbc),
            (StoragePrefixes.AesGcmV1, StoredValueKind.AesGcm),
            (StoragePrefixes.SecretboxV1, StoredValueKind.Secretbox),
        }.Select(p => (p.Item1, Encoding.ASCII.GetBytes(p.Item1), p.Item2)),
    ];

    /// <summary>A short label for reports: <c>plaintext</c>, <c>aescbc:key1</c>, <c>kms:v2:myKmsPlugin</c>, ...</summary>
    public string Label => Kind switch
    {
        StoredValueKind.Plaintext => "plaintext",
        StoredValueKind.AesCbc => "aescbc:" + (Name ?? "?"),
        StoredValueKind.AesGcm => "aesgcm:" + (Name ?? "?"),
        StoredValueKind.Secretbox => "secretbox:" + (Name ?? "?"),
        StoredValueKind.KmsV1 => "kms:v1:" + (Name ?? "?"),
        StoredValueKind.KmsV2 => "kms:v2:" + (Name ?? "?"),
        _ => "unrecognized:" + (Name ?? "?"),
    };

    /// <summary>Reads the prefix of <paramref name="value"/>. Never throws: malformed prefixes come back with a <see cref="Problem"/>.</summary>
    public static StoredValueHeader Parse(ReadOnlySpan<byte> value)
    {
        if (!value.StartsWith("k8s:enc:"u8))
        {
            return new StoredValueHeader(StoredValueKind.Plaintext, null, 0, null);
        }

        foreach (var (prefix, prefixBytes, kind) in Known)
        {
            if (!value.StartsWith(prefixBytes))
            {
                continue;
            }

            // The name runs to the next colon (KMS names may not contain one; key names in practice do not).
            var rest = value[prefixBytes.Length..];
            var colon = rest.IndexOf((byte)':');
            if (colon < 0 || colon > MaxNameBytes)
            {
                return new StoredValueHeader(kind, null, value.Length, $"the {prefix} prefix has no name followed by ':'");
            }

            if (colon == 0)
            {
                return new StoredValueHeader(kind, null, value.Length, $"the {prefix} prefix has an empty name");
            }

            return new StoredValueHeader(kind, Printable(rest[..colon]), prefixBytes.Length + colon + 1, null);
        }

        // k8s:enc:<something>: — show the next two segments (e.g. "envelope:v1") so an operator can recognise it.
        var tail = value["k8s:enc:"u8.Length..];
        var end = 0;
        for (var colons = 0; end < tail.Length && end < 64; end++)
        {
            if (tail[end] == (byte)':' && ++colons == 2)
            {
                break;
            }
        }

        return new StoredValueHeader(StoredValueKind.UnrecognizedEncrypted, Printable(tail[..end]), value.Length,
            "a k8s:enc: prefix that kube-apiserver does not write");
    }

    /// <summary>Names come from etcd, so they are untrusted text: keep printable ASCII, replace the rest.</summary>
    private static string Printable(ReadOnlySpan<byte> bytes)
    {
        var builder = new StringBuilder(bytes.Length);
        foreach (var b in bytes)
        {
            builder.Append(b is >= 0x21 and <= 0x7e && b != (byte)'"' ? (char)b : '?');
        }

        return builder.ToString();
    }
}
