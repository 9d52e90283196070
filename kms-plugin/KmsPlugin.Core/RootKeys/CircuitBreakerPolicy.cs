using Microsoft.Extensions.Logging;

namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// Puts a <see cref="CircuitBreaker"/> in front of a remote root key (<see cref="PolicyRootKey"/>): during an outage
/// its calls fail fast instead of reaching the failing KMS. The health probe calls through it too, which makes it the
/// natural half-open trial: with no client traffic the circuit still closes within one probe interval of the open
/// interval ending. A successful version lookup does not close the circuit: metadata can be readable while wraps are
/// denied, so only a wrap or unwrap proves the key usable again.
/// </summary>
public sealed class CircuitBreakerPolicy(CircuitBreaker breaker) : IRootKeyCallPolicy
{
    /// <summary>The provider name of <see cref="LocalRootKey"/>: a key in a local file makes no remote call, so it gets no breaker.</summary>
    public const string LocalProvider = "local";

    public CircuitBreaker Breaker { get; } = breaker ?? throw new ArgumentNullException(nameof(breaker));

    /// <summary>
    /// <paramref name="key"/> behind a new breaker, or unchanged when <paramref name="options"/> is null (disabled) or
    /// the key is local.
    /// </summary>
    public static IRootKey Decorate(IRootKey key, CircuitBreakerOptions? options, TimeProvider time, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        return options is null || key.Provider == LocalProvider
            ? key
            : PolicyRootKey.Decorate(key, new CircuitBreakerPolicy(new CircuitBreaker(key.Name, options, time, logger)));
    }

    public Task<T> RunAsync<T>(RootKeyOperation operation, Func<CancellationToken, Task<T>> remoteCall, CancellationToken cancellationToken) =>
        Breaker.ExecuteAsync(remoteCall, cancellationToken, successCloses: operation != RootKeyOperation.ReadVersion);
}
