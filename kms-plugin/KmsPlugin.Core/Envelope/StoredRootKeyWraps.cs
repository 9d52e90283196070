using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Core.Envelope;

/// <summary>
/// The root-key wraps a stored ciphertext carries, found as Decrypt finds them (direct-wrap ciphertext, v1 or v2
/// annotation), for tools that look at stored data without decrypting it: <c>kms-plugin audit</c> asks each configured
/// root key whether it <see cref="IRootKey.Recognizes"/> one of them, so data under an older version of a versioned key
/// (Azure, GCP, Vault) is reported as that key's, not as unknown.
/// </summary>
public static class StoredRootKeyWraps
{
    /// <summary>(wrap key_id, wrap) pairs; empty when the value carries none or is malformed (the caller reports those).</summary>
    public static IReadOnlyList<KeyValuePair<string, ReadOnlyMemory<byte>>> Of(string keyId, ReadOnlyMemory<byte> ciphertext,
        IReadOnlyDictionary<string, ReadOnlyMemory<byte>> annotations)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        ArgumentNullException.ThrowIfNull(annotations);
        try
        {
            var baseKeyId = KeyIdEpoch.BaseOf(keyId);
            if (DirectSeedFormat.IsDirect(ciphertext.Span))
            {
                return [new(baseKeyId, DirectSeedFormat.RootKeyWrap(ciphertext))];
            }

            if (!annotations.TryGetValue(WrappedKekAnnotation.Key, out var value))
            {
                return [];
            }

            return WrappedKekAnnotation.IsMultiWrap(value.Span)
                ? WrappedKekAnnotation.Wraps(value)
                : [new(baseKeyId, WrappedKekAnnotation.RootKeyWrap(value))];
        }
        catch (KmsPluginException)
        {
            return [];
        }
    }
}
