using KmsPlugin.Core.Security;
using Microsoft.Extensions.Logging;

namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// Puts a <see cref="CircuitBreaker"/> in front of a remote root key: wrap and unwrap go through the breaker (so
/// during an outage they fail fast instead of reaching the failing KMS); everything else is forwarded unchanged,
/// including the default-implemented members of <see cref="IRootKey"/> (a decorator that did not forward them would
/// silently use the interface's default instead of the provider's). The health probe calls through this decorator
/// too, which makes it the natural half-open trial: with no client traffic the circuit still closes within one
/// probe interval of the open interval ending.
/// </summary>
public sealed class CircuitBreakingRootKey : IRootKey
{
    /// <summary>The provider name of <see cref="LocalRootKey"/>: a key in a local file makes no remote call, so it gets no breaker.</summary>
    public const string LocalProvider = "local";

    private readonly IRootKey _inner;

    public CircuitBreakingRootKey(IRootKey inner, CircuitBreaker breaker)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(breaker);
        _inner = inner;
        Breaker = breaker;
    }

    /// <summary>The key the breaker guards.</summary>
    public IRootKey Inner => _inner;

    public CircuitBreaker Breaker { get; }

    public string Name => _inner.Name;

    public string Provider => _inner.Provider;

    public string KeyId => _inner.KeyId;

    /// <summary>
    /// <paramref name="key"/> behind a new breaker, or unchanged when <paramref name="options"/> is null (disabled) or
    /// the key is local. A key whose backend has versions stays an <see cref="IVersionedRootKey"/> (so the version
    /// follower still finds it), and the versions it moves to share its breaker: they live on the same backend.
    /// </summary>
    public static IRootKey Decorate(IRootKey key, CircuitBreakerOptions? options, TimeProvider time, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (options is null || key.Provider == LocalProvider)
        {
            return key;
        }

        var breaker = new CircuitBreaker(key.Name, options, time, logger);
        return key is IVersionedRootKey versioned ? new CircuitBreakingVersionedRootKey(versioned, breaker) : new CircuitBreakingRootKey(key, breaker);
    }

    public Task<byte[]> WrapAsync(ReadOnlyMemory<byte> kek, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken) =>
        Breaker.ExecuteAsync(token => _inner.WrapAsync(kek, associatedData, token), cancellationToken);

    public Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken) =>
        Breaker.ExecuteAsync(token => _inner.UnwrapAsync(wrapped, associatedData, token), cancellationToken);

    /// <summary>A local check (no remote call), so it bypasses the breaker.</summary>
    public bool Recognizes(string keyId, ReadOnlySpan<byte> wrapped) => _inner.Recognizes(keyId, wrapped);

    public void Dispose() => _inner.Dispose();
}
