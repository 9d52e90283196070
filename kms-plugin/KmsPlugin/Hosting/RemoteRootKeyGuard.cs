using KmsPlugin.Configuration;
using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Hosting;

/// <summary>
/// What <see cref="RootKeyFactory"/> puts around each root key it opens for the server: a circuit breaker
/// (<see cref="CircuitBreakerPolicy"/>) outermost, so a call failed fast never reaches the metering or the provider;
/// and, for tests only, a stand-in for the remote innermost (<see cref="ServerDependencies.DecorateRemote"/>), so what
/// a fake counts are exactly the calls that got past the breaker. Local keys get no breaker: they make no remote call.
/// </summary>
/// <param name="CircuitBreaker">The <c>circuitBreaker</c> options; null when disabled.</param>
/// <param name="Time">The clock the breaker measures open intervals with.</param>
/// <param name="Logger">Where the breaker logs opening and closing.</param>
public sealed record RemoteRootKeyGuard(CircuitBreakerOptions? CircuitBreaker, TimeProvider Time, ILogger? Logger = null)
{
    /// <summary>
    /// The guard the server uses: <c>circuitBreaker</c> from <paramref name="config"/>, with a cancellation after 90% of
    /// <c>rootKeyTimeout</c> counted as the remote timing out (the plugin cancels every root-key call at that bound;
    /// the 10% absorbs the moment between the timeout starting and the call reaching the breaker).
    /// </summary>
    public static RemoteRootKeyGuard For(PluginConfig config, ServerDependencies dependencies, ILoggerFactory loggers)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(dependencies);
        ArgumentNullException.ThrowIfNull(loggers);
        return new RemoteRootKeyGuard(config.CircuitBreaker is { } options ? options with { SlowCallDuration = config.RootKeyTimeout * 0.9 } : null,
            dependencies.Time, loggers.CreateLogger("KmsPlugin.CircuitBreaker"))
        {
            DecorateRemote = dependencies.DecorateRemote,
        };
    }

    /// <summary>Replaces or wraps the provider's key, inside the breaker (tests only).</summary>
    public Func<IRootKey, IRootKey>? DecorateRemote { get; init; }

    /// <summary>The provider's key, or the test's stand-in for it.</summary>
    public IRootKey Remote(IRootKey opened) => DecorateRemote is { } decorate ? decorate(opened) : opened;

    /// <summary><paramref name="key"/> behind a circuit breaker, unless the breaker is disabled or the key is local.</summary>
    public IRootKey Protect(IRootKey key) => CircuitBreakerPolicy.Decorate(key, CircuitBreaker, Time, Logger);
}
