using KmsPlugin.Core.Security;

namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// One configured root key with its role, the configuration it was opened from (to reuse it across reloads) and, when
/// its backend's version is followed, the undecorated provider key (<see cref="IVersionedRootKey"/>) to move.
/// </summary>
public sealed record RootKeyEntry(IRootKey Key, RootKeyRole Role, string? Fingerprint = null, IVersionedRootKey? Versioned = null);

/// <summary>
/// The configured root keys in order, immutable (a reload or a followed version builds a new ring and swaps it in,
/// see <see cref="ActiveRootKeys"/>). The first is the primary (wraps every new KEK and names the key_id); entries
/// marked additional-wrap also wrap every new KEK; the rest only unwrap KEKs wrapped under them, so data written
/// before a root-key change stays readable.
/// </summary>
public sealed class RootKeyRing : IDisposable
{
    private readonly Dictionary<string, IRootKey> _byKeyId = new(StringComparer.Ordinal);

    public RootKeyRing(IReadOnlyList<IRootKey> keys)
        : this(keys?.Select((key, i) => new RootKeyEntry(key, i == 0 ? RootKeyRole.Primary : RootKeyRole.DecryptOnly)).ToList()!, null)
    {
    }

    /// <param name="entries">Primary first.</param>
    /// <param name="primaryKeyId">The key_id to report (the primary's own, or with an epoch from <see cref="KeyIdHistory"/>).</param>
    public RootKeyRing(IReadOnlyList<RootKeyEntry> entries, string? primaryKeyId)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (entries.Count == 0)
        {
            throw new ArgumentException("at least one root key is required", nameof(entries));
        }

        if (entries[0].Role != RootKeyRole.Primary || entries.Skip(1).Any(e => e.Role == RootKeyRole.Primary))
        {
            throw new ArgumentException("exactly the first root key is the primary", nameof(entries));
        }

        foreach (var entry in entries)
        {
            if (!_byKeyId.TryAdd(entry.Key.KeyId, entry.Key))
            {
                throw new ArgumentException(
                    $"root keys '{_byKeyId[entry.Key.KeyId].Name}' and '{entry.Key.Name}' are the same key (key_id {KeyIdHash.Of(entry.Key.KeyId)}); list each key once",
                    nameof(entries));
            }
        }

        Entries = entries;
        Keys = entries.Select(e => e.Key).ToList();
        AdditionalWraps = entries.Where(e => e.Role == RootKeyRole.AdditionalWrap).Select(e => e.Key).ToList();
        PrimaryKeyId = primaryKeyId ?? entries[0].Key.KeyId;
        if (KeyIdEpoch.BaseOf(PrimaryKeyId) != entries[0].Key.KeyId)
        {
            throw new ArgumentException("the reported key_id must be the primary's key_id or an epoch of it", nameof(primaryKeyId));
        }
    }

    public IRootKey Primary => Keys[0];

    /// <summary>What Status and Encrypt report: the primary's key_id, with an epoch suffix when it came back (<see cref="KeyIdEpoch"/>).</summary>
    public string PrimaryKeyId { get; }

    public IReadOnlyList<RootKeyEntry> Entries { get; }

    /// <summary>Every root key in configured order (the Decrypt order).</summary>
    public IReadOnlyList<IRootKey> Keys { get; }

    /// <summary>The keys that wrap every new KEK besides the primary, in configured order.</summary>
    public IReadOnlyList<IRootKey> AdditionalWraps { get; }

    /// <summary>The root key whose own key_id is exactly <paramref name="keyId"/> (no epoch suffix, no other versions).</summary>
    public bool TryGet(string keyId, out IRootKey rootKey) => _byKeyId.TryGetValue(keyId, out rootKey!);

    /// <summary>
    /// The configured key that can unwrap <paramref name="wrapped"/>, made by the root key whose own key_id is
    /// <paramref name="wrapKeyId"/>: the exact key first (no allocation, the common case), else the first key, in
    /// configured order, that recognises it as one of its versions.
    /// </summary>
    public IRootKey? FindUnwrapper(string wrapKeyId, ReadOnlySpan<byte> wrapped)
    {
        // Asking the exact key too lets a versioned provider refuse, locally, a blob whose recorded version does not
        // match the key_id it is presented under (no remote call for it); for every other key this is an equality.
        if (_byKeyId.TryGetValue(wrapKeyId, out var exact) && exact.Recognizes(wrapKeyId, wrapped))
        {
            return exact;
        }

        foreach (var key in Keys)
        {
            if (key.Recognizes(wrapKeyId, wrapped))
            {
                return key;
            }
        }

        return null;
    }

    /// <summary>Disposes every key of this ring; only for a ring no other ring shares keys with (see <see cref="ActiveRootKeys"/>).</summary>
    public void Dispose()
    {
        foreach (var key in Keys)
        {
            key.Dispose();
        }
    }
}
