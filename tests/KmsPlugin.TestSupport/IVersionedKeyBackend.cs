using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.TestSupport;

/// <summary>
/// A provider's wire fake holding a key whose current version moves remotely, and the real provider opened against
/// it: what <see cref="VersionedRootKeyContract{TBackend}"/> and <see cref="WrapFuzzContract{TBackend}"/> need. Each
/// provider test project implements it once, in its backend's own terms (a Transit rotate, a new Key Vault key
/// version, a new Cloud KMS primary version). A fresh instance per test: the contracts start and dispose it.
/// </summary>
public interface IVersionedKeyBackend : IAsyncDisposable
{
    /// <summary>The provider name, which prefixes every key_id it reports (<c>vault</c>, <c>azure</c>, <c>gcp</c>).</summary>
    string Provider { get; }

    /// <summary>Starts the fake with the key at one version (its current one) and returns that version's name.</summary>
    Task<string> StartAsync();

    /// <summary>The real provider on the key: following the backend's current version, or pinned to <paramref name="pinnedVersion"/>.</summary>
    Task<IVersionedRootKey> OpenAsync(string? pinnedVersion = null);

    /// <summary>Another key on the same backend, with one version, opened with the same credentials and following its current version.</summary>
    Task<IVersionedRootKey> OpenOtherKeyAsync();

    /// <summary>The backend makes a new version of the key current, as its own rotate operation does; returns the new version's name.</summary>
    string Rotate();

    /// <summary>The key_id the key should have at <paramref name="version"/>: <see cref="KeyIds.Derive"/> over the backend's name for that version.</summary>
    string KeyIdOf(string version);

    /// <summary>The key_id the key of <see cref="OpenOtherKeyAsync"/> should have at <paramref name="version"/>.</summary>
    string OtherKeyIdOf(string version);

    /// <summary>
    /// The version a wrap records, read from its header the way the provider's blob format lays it out (written here,
    /// not the provider's parser): null when the bytes have no such header.
    /// </summary>
    string? VersionRecordedIn(byte[] wrapped);

    /// <summary>Wrap (encrypt) requests the backend has received for the key at <paramref name="version"/>.</summary>
    int WrapsWith(string version);

    /// <summary>Reads of the key's metadata the backend has received (what opening the key and ReadLatestVersionAsync send).</summary>
    int KeyReads();

    /// <summary>Credentials the backend has issued (logins, token exchanges).</summary>
    int CredentialsIssued();

    /// <summary>From now on the backend denies reading the key, as a policy or role without that permission does.</summary>
    void DenyKeyReads();

    /// <summary>A fragment the provider's error for a denied key read carries (the backend's status or error code).</summary>
    string DeniedKeyReadMessage { get; }
}
