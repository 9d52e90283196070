namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// When a remote root key's <see cref="CircuitBreaker"/> opens and how long it stays open (configuration:
/// <c>circuitBreaker</c>, docs/configuration.md). The open interval doubles after each failed trial call, up to
/// <see cref="MaxOpenInterval"/>, and returns to <see cref="OpenInterval"/> once a trial succeeds.
/// </summary>
public sealed record CircuitBreakerOptions
{
    public static CircuitBreakerOptions Default { get; } = new();

    /// <summary>Consecutive outage-class failures (unavailable, throttled, denied, timed out) that open the circuit.</summary>
    public int FailureThreshold { get; init; } = 5;

    /// <summary>How long the circuit stays open the first time, before one trial call is let through.</summary>
    public TimeSpan OpenInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The cap on the doubled open interval while the remote keeps failing its trials.</summary>
    public TimeSpan MaxOpenInterval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// A call cancelled after running at least this long counts as a timeout of the remote, whoever cancelled it;
    /// cancelled sooner, it is a caller giving up and does not count. Null: no cancellation by the caller counts.
    /// The server sets it just under <c>rootKeyTimeout</c>, the bound it puts on every root-key call, so a remote that
    /// never answers (packets dropped: every attempt ends in the plugin's own timeout rather than an error) opens the
    /// circuit, while an apiserver's shorter deadline (3 s by default) does not count. Resilience4j's
    /// <c>slowCallDurationThreshold</c> is the same idea, applied here only to calls that never answered.
    /// </summary>
    public TimeSpan? SlowCallDuration { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid value.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(FailureThreshold, nameof(FailureThreshold));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(OpenInterval, TimeSpan.Zero, nameof(OpenInterval));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxOpenInterval, OpenInterval, nameof(MaxOpenInterval));
        if (SlowCallDuration is { } slow)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(slow, TimeSpan.Zero, nameof(SlowCallDuration));
        }
    }
}
