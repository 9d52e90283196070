using KmsPlugin.Core.Security;

namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// The configured root keys in order: the first is the primary (wraps every new KEK and names the key_id); the
/// rest only unwrap KEKs that were wrapped under them, so data written before a root-key change stays readable.
/// </summary>
public sealed class RootKeyRing : IDisposable
{
    private readonly Dictionary<string, IRootKey> _byKeyId = new(StringComparer.Ordinal);

    public RootKeyRing(IReadOnlyList<IRootKey> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.Count == 0)
        {
            throw new ArgumentException("at least one root key is required", nameof(keys));
        }

        foreach (var key in keys)
        {
            if (!_byKeyId.TryAdd(key.KeyId, key))
            {
                throw new ArgumentException(
                    $"root keys '{_byKeyId[key.KeyId].Name}' and '{key.Name}' are the same key (key_id {KeyIdHash.Of(key.KeyId)}); list each key once",
                    nameof(keys));
            }
        }

        Keys = keys;
    }

    public IRootKey Primary => Keys[0];

    public IReadOnlyList<IRootKey> Keys { get; }

    public bool TryGet(string keyId, out IRootKey rootKey) => _byKeyId.TryGetValue(keyId, out rootKey!);

    public void Dispose()
    {
        foreach (var key in Keys)
        {
            key.Dispose();
        }
    }
}
