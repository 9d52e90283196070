using System.Text;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Core.Envelope;

/// <summary>
/// The annotation that carries the wrapped local KEK (stored by the apiserver in plaintext in etcd, which is fine:
/// it is only ever the root key's ciphertext). Value: format version (0x01) ‖ the root key's wrap output.
/// The wrap's associated data binds the key_id, so a blob moved under another key_id does not unwrap.
/// </summary>
internal static class WrappedKekAnnotation
{
    /// <summary>Lowercase FQDN with two or more labels, as the apiserver requires of annotation keys.</summary>
    public const string Key = "kek.kmsplugin.io";

    public const byte Version1 = 0x01;

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

    /// <summary>The root key's wrap output inside an annotation value.</summary>
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
