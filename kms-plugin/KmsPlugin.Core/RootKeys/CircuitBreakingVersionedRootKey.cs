using KmsPlugin.Core.Security;

namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// <see cref="CircuitBreakingRootKey"/> for a key whose backend has versions: it stays an <see cref="IVersionedRootKey"/>,
/// its version lookup goes through the same breaker (a remote call that fails fast while the backend is out), and the
/// key it switches to shares the breaker. A successful lookup does not close the circuit: metadata can be readable
/// while wraps are denied, so only a wrap or unwrap proves the key usable again.
/// </summary>
public sealed class CircuitBreakingVersionedRootKey : IVersionedRootKey
{
    private readonly IVersionedRootKey _inner;
    private readonly CircuitBreakingRootKey _guarded;

    public CircuitBreakingVersionedRootKey(IVersionedRootKey inner, CircuitBreaker breaker)
    {
        ArgumentNullException.ThrowIfNull(inner);
        _inner = inner;
        _guarded = new CircuitBreakingRootKey(inner, breaker);
    }

    /// <summary>The key the breaker guards.</summary>
    public IVersionedRootKey Inner => _inner;

    public CircuitBreaker Breaker => _guarded.Breaker;

    public string Name => _inner.Name;

    public string Provider => _inner.Provider;

    public string KeyId => _inner.KeyId;

    public bool FollowsLatestVersion => _inner.FollowsLatestVersion;

    public string CurrentVersion => _inner.CurrentVersion;

    public Task<byte[]> WrapAsync(ReadOnlyMemory<byte> kek, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken) =>
        _guarded.WrapAsync(kek, associatedData, cancellationToken);

    public Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken) =>
        _guarded.UnwrapAsync(wrapped, associatedData, cancellationToken);

    public bool Recognizes(string keyId, ReadOnlySpan<byte> wrapped) => _inner.Recognizes(keyId, wrapped);

    public Task<string> ReadLatestVersionAsync(CancellationToken cancellationToken) =>
        Breaker.ExecuteAsync(_inner.ReadLatestVersionAsync, cancellationToken, successCloses: false);

    public IVersionedRootKey WithVersion(string version) => new CircuitBreakingVersionedRootKey(_inner.WithVersion(version), Breaker);

    public void Dispose() => _inner.Dispose();
}
