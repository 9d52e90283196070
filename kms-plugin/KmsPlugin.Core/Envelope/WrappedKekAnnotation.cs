using System.Text;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Core.Envelope;

/// <summary>
/// The annotation that carries the wrapped local KEK (stored by the apiserver in plaintext in etcd, which is fine:
/// it is only ever root keys' ciphertext). Two formats:
/// <list type="bullet">
/// <item>v1, one wrap (the primary only): <c>0x01 ‖ wrap</c>; the wrapping key is the one the request's key_id names.</item>
/// <item>v2, the primary and additional wraps: <c>0x02 ‖ n (2..8) ‖ n × [len u8 ‖ key_id ‖ len u16 big-endian ‖ wrap]</c>,
/// primary first; each key_id is the wrapping root key's own (no epoch suffix), so Decrypt can find it after the
/// primary is gone.</item>
/// </list>
/// Every wrap's associated data binds the reported key_id, so a blob moved under another key_id does not unwrap.
/// </summary>
internal static class WrappedKekAnnotation
{
    /// <summary>Lowercase FQDN with two or more labels, as the apiserver requires of annotation keys.</summary>
    public const string Key = "kek.kmsplugin.io";

    public const byte Version1 = 0x01;

    public const byte Version2 = 0x02;

    /// <summary>Primary plus at most seven additional wraps: bounded work per Decrypt, far inside the apiserver's 32 KiB.</summary>
    public const int MaxWraps = 8;

    /// <summary>The bound of one root key's wrap inside either format.</summary>
    public const int MaxWrapBytes = 4096;

    /// <summary>The bound of a whole v2 value.</summary>
    public const int MaxMultiValueBytes = 2 + (MaxWraps * (1 + 255 + 2 + MaxWrapBytes));

    /// <summary>Generous for every provider (Azure RSA-4096 wraps are 512 bytes); bounds what is hashed or sent to a root key.</summary>
    public const int MaxValueBytes = 4096;

    private const string WrapAadLabel = "k8s-kms-plugin/wrapped-kek/v1\n";

    public static byte[] Encode(ReadOnlySpan<byte> rootKeyWrap)
    {
        var value = new byte[1 + rootKeyWrap.Length];
        value[0] = Version1;
        rootKeyWrap.CopyTo(value.AsSpan(1));
        return value;
    }

    /// <summary>A v2 value: the primary's wrap first, then each additional wrap, each with its root key's own key_id.</summary>
    public static byte[] EncodeMany(IReadOnlyList<KeyValuePair<string, byte[]>> wraps)
    {
        ArgumentNullException.ThrowIfNull(wraps);
        if (wraps.Count is < 2 or > MaxWraps)
        {
            throw new ArgumentOutOfRangeException(nameof(wraps), $"a multi-wrap annotation holds 2..{MaxWraps} wraps");
        }

        using var buffer = new MemoryStream();
        buffer.WriteByte(Version2);
        buffer.WriteByte((byte)wraps.Count);
        foreach (var (keyId, wrap) in wraps)
        {
            var id = Encoding.ASCII.GetBytes(keyId);
            if (id.Length is 0 or > 255 || wrap.Length is 0 or > MaxWrapBytes)
            {
                throw new ArgumentOutOfRangeException(nameof(wraps), "a wrap or its key_id is out of bounds");
            }

            buffer.WriteByte((byte)id.Length);
            buffer.Write(id);
            buffer.WriteByte((byte)(wrap.Length >> 8));
            buffer.WriteByte((byte)wrap.Length);
            buffer.Write(wrap);
        }

        return buffer.ToArray();
    }

    /// <summary>True for a v2 (several wraps) value; <see cref="RootKeyWrap"/> reads v1, <see cref="Wraps"/> reads v2.</summary>
    public static bool IsMultiWrap(ReadOnlySpan<byte> value) => !value.IsEmpty && value[0] == Version2;

    /// <summary>The wraps of a v2 value, strictly checked (counts, lengths, ASCII key_ids, no trailing bytes).</summary>
    public static List<KeyValuePair<string, ReadOnlyMemory<byte>>> Wraps(ReadOnlyMemory<byte> value)
    {
        if (value.Length > MaxMultiValueBytes)
        {
            throw KmsPluginException.Invalid($"annotation {Key} is {value.Length} bytes, more than the {MaxMultiValueBytes} this plugin ever writes");
        }

        var span = value.Span;
        if (span.Length < 2 || span[0] != Version2 || span[1] is < 2 or > MaxWraps)
        {
            throw KmsPluginException.Invalid($"annotation {Key} is not a valid multi-wrap value (format {Version2}, 2..{MaxWraps} wraps)");
        }

        var wraps = new List<KeyValuePair<string, ReadOnlyMemory<byte>>>(span[1]);
        var at = 2;
        for (var i = 0; i < span[1]; i++)
        {
            if (at >= span.Length || span[at] == 0 || at + 1 + span[at] + 2 > span.Length)
            {
                throw KmsPluginException.Invalid($"annotation {Key} is truncated in wrap {i + 1}");
            }

            var id = span.Slice(at + 1, span[at]);
            foreach (var c in id)
            {
                if (c is < 0x21 or > 0x7e)
                {
                    throw KmsPluginException.Invalid($"annotation {Key} names a non-printable key_id in wrap {i + 1}");
                }
            }

            at += 1 + id.Length;
            var length = (span[at] << 8) | span[at + 1];
            at += 2;
            if (length is 0 or > MaxWrapBytes || at + length > span.Length)
            {
                throw KmsPluginException.Invalid($"annotation {Key} has a wrap of invalid length in wrap {i + 1}");
            }

            wraps.Add(new(Encoding.ASCII.GetString(id), value.Slice(at, length)));
            at += length;
        }

        return at == span.Length ? wraps : throw KmsPluginException.Invalid($"annotation {Key} has {span.Length - at} trailing bytes");
    }

    /// <summary>The root key's wrap output inside a v1 annotation value.</summary>
    public static ReadOnlyMemory<byte> RootKeyWrap(ReadOnlyMemory<byte> value)
    {
        if (value.IsEmpty)
        {
            throw KmsPluginException.Invalid($"annotation {Key} is empty");
        }

        if (value.Length > MaxValueBytes)
        {
            throw KmsPluginException.Invalid($"annotation {Key} is {value.Length} bytes, more than the {MaxValueBytes} this plugin ever writes");
        }

        if (value.Span[0] != Version1)
        {
            throw KmsPluginException.Invalid($"annotation {Key} has unknown format version {value.Span[0]}");
        }

        if (value.Length < 2)
        {
            throw KmsPluginException.Invalid($"annotation {Key} holds no wrapped KEK");
        }

        return value[1..];
    }

    public static byte[] WrapAssociatedData(string keyId) => Encoding.UTF8.GetBytes(WrapAadLabel + keyId);
}
