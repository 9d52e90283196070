using System.Text;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Core.Envelope;

/// <summary>
/// The ciphertext written in <see cref="EnvelopeMode.Direct"/>: the seed wrapped by the primary root key itself.
/// <code>
///   version (1 byte, 0x02) ‖ the root key's wrap output
/// </code>
/// No annotation goes with it. Its own version byte lets Decrypt tell it from a KEK-sealed value (version 0x01,
/// <see cref="SealedSeedFormat"/>) whatever mode the plugin runs in now. The wrap's associated data binds this format
/// and the key_id (a different label from <see cref="WrappedKekAnnotation"/>'s, so a wrapped KEK can never be passed off
/// as a seed, nor a seed as a KEK), so a ciphertext moved under another key_id does not unwrap.
/// </summary>
internal static class DirectSeedFormat
{
    public const byte Version2 = 0x02;

    private const string WrapAadLabel = "k8s-kms-plugin/direct-seed/v1\n";

    public static bool IsDirect(ReadOnlySpan<byte> ciphertext) => !ciphertext.IsEmpty && ciphertext[0] == Version2;

    public static byte[] Encode(ReadOnlySpan<byte> rootKeyWrap)
    {
        var value = new byte[1 + rootKeyWrap.Length];
        value[0] = Version2;
        rootKeyWrap.CopyTo(value.AsSpan(1));
        return value;
    }

    /// <summary>The root key's wrap output inside a direct-mode ciphertext (checked: version byte, not empty).</summary>
    public static ReadOnlyMemory<byte> RootKeyWrap(ReadOnlyMemory<byte> ciphertext)
    {
        if (!IsDirect(ciphertext.Span))
        {
            throw KmsPluginException.Invalid("ciphertext is not in the direct-wrap format");
        }

        if (ciphertext.Length < 2)
        {
            throw KmsPluginException.Invalid($"ciphertext of format version {Version2} holds no wrapped seed");
        }

        return ciphertext[1..];
    }

    public static byte[] WrapAssociatedData(string keyId) => Encoding.UTF8.GetBytes(WrapAadLabel + keyId);
}
