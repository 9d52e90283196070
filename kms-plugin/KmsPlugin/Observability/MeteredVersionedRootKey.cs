using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Observability;

/// <summary>
/// <see cref="MeteredRootKey"/> for a key whose backend has versions: it stays an <see cref="IVersionedRootKey"/>
/// (so the version follower still recognises it), meters the version lookup (<c>operation="read_version"</c>, a
/// remote metadata call that can be throttled like any other), and meters the key it switches to as well.
/// </summary>
public sealed class MeteredVersionedRootKey(IVersionedRootKey inner, PluginMetrics metrics) : IVersionedRootKey
{
    private readonly MeteredRootKey _metered = new(inner, metrics);

    /// <summary>The provider's key.</summary>
    public IVersionedRootKey Inner => inner;

    public string Name => _metered.Name;

    public string Provider => _metered.Provider;

    public string KeyId => _metered.KeyId;

    public bool FollowsLatestVersion => inner.FollowsLatestVersion;

    public string CurrentVersion => inner.CurrentVersion;

    public Task<byte[]> WrapAsync(ReadOnlyMemory<byte> kek, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken) =>
        _metered.WrapAsync(kek, associatedData, cancellationToken);

    public Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken) =>
        _metered.UnwrapAsync(wrapped, associatedData, cancellationToken);

    public bool Recognizes(string keyId, ReadOnlySpan<byte> wrapped) => _metered.Recognizes(keyId, wrapped);

    public Task<string> ReadLatestVersionAsync(CancellationToken cancellationToken) =>
        _metered.MeasureAsync(MeteredRootKey.ReadVersion, inner.ReadLatestVersionAsync, cancellationToken);

    public IVersionedRootKey WithVersion(string version) => new MeteredVersionedRootKey(inner.WithVersion(version), metrics);

    public void Dispose() => _metered.Dispose();
}
