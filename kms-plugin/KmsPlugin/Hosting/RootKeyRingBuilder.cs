using KmsPlugin.Configuration;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Hosting;

/// <summary>
/// Builds rings from configuration: opens each root key through its provider and decorates it (tests count calls
/// this way), reuses keys whose configuration did not change (a reload must not reopen an HSM session pool or log in
/// to Vault again for an untouched entry), and asks <see cref="KeyIdHistory"/> for the key_id of the wrap set.
/// </summary>
public sealed class RootKeyRingBuilder(Func<RootKeyConfig, IRootKey> open, Func<IRootKey, IRootKey> decorate, KeyIdHistory history)
{
    public KeyIdHistory History => history;

    /// <summary>A ring for <paramref name="configs"/>; keys of <paramref name="reuse"/> with the same configuration are taken over, not reopened.</summary>
    /// <remarks>Keys opened here are disposed if the build fails; reused keys are left to their ring.</remarks>
    public RootKeyRing Build(IReadOnlyList<RootKeyConfig> configs, RootKeyRing? reuse) => AssignKeyId(Open(configs, reuse));

    /// <summary>
    /// The entries for <paramref name="configs"/> without a key_id yet (so a reload can try the new primary before the
    /// key_id history records it); keys of <paramref name="reuse"/> with the same configuration are taken over.
    /// </summary>
    public List<RootKeyEntry> Open(IReadOnlyList<RootKeyConfig> configs, RootKeyRing? reuse)
    {
        ArgumentNullException.ThrowIfNull(configs);
        var reusable = new Dictionary<string, RootKeyEntry>(StringComparer.Ordinal);
        foreach (var entry in reuse?.Entries ?? [])
        {
            if (entry.Fingerprint is { Length: > 0 } fingerprint)
            {
                reusable.TryAdd(fingerprint, entry);
            }
        }

        var opened = new List<IRootKey>();
        try
        {
            var entries = new List<RootKeyEntry>();
            for (var i = 0; i < configs.Count; i++)
            {
                var config = configs[i];
                var role = i == 0 ? RootKeyRole.Primary : config.Role == RootKeyRole.AdditionalWrap ? RootKeyRole.AdditionalWrap : RootKeyRole.DecryptOnly;
                var fingerprint = Fingerprint(config);
                if (reusable.Remove(fingerprint, out var existing))
                {
                    entries.Add(existing with { Role = role });
                    continue;
                }

                var raw = open(config);
                opened.Add(raw);
                var key = decorate(raw);
                opened[^1] = key;
                entries.Add(new RootKeyEntry(key, role, fingerprint, raw as IVersionedRootKey));
            }

            return entries;
        }
        catch
        {
            foreach (var key in opened)
            {
                key.Dispose();
            }

            throw;
        }
    }

    /// <summary>The ring with the entry named <paramref name="name"/> moved to <paramref name="version"/> (a followed remote version), or null if that entry changed meanwhile.</summary>
    public RootKeyRing? WithVersion(RootKeyRing ring, string name, IVersionedRootKey observed, string version)
    {
        ArgumentNullException.ThrowIfNull(ring);
        var index = ring.Entries.ToList().FindIndex(e => e.Key.Name == name && ReferenceEquals(e.Versioned, observed));
        if (index < 0)
        {
            return null;
        }

        var raw = observed.WithVersion(version);
        var key = decorate(raw);
        try
        {
            var entries = ring.Entries.ToList();
            entries[index] = entries[index] with { Key = key, Versioned = raw };
            return AssignKeyId(entries);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>The ring of <paramref name="entries"/> with the key_id the history gives its wrap set (recorded now).</summary>
    public RootKeyRing AssignKeyId(IReadOnlyList<RootKeyEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var additional = entries.Where(e => e.Role == RootKeyRole.AdditionalWrap).Select(e => e.Key.KeyId).ToList();
        var keyId = history.Assign(entries[0].Key.KeyId, additional);
        return new RootKeyRing(entries, keyId);
    }

    private static string Fingerprint(RootKeyConfig config) =>
        config.Fingerprint.Length > 0 ? config.Fingerprint : $"{config.Name}\n{config.Provider}\n{config.Settings}";

    /// <summary>The history for a configuration: in the state directory (created 0700 if missing), else in memory.</summary>
    public static KeyIdHistory OpenHistory(PluginConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.StateDirectory is not { } directory)
        {
            return KeyIdHistory.InMemory();
        }

        // Whoever can write the state can make the plugin reuse a key_id: 0700, owned by the plugin (created so if missing).
        FileSafety.RequirePrivateDirectory(directory, "plugin", "stateDirectory", create: true);
        return KeyIdHistory.Open(directory);
    }
}
