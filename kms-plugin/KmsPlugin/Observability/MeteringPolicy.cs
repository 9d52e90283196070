using System.Diagnostics;
using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Observability;

/// <summary>
/// Counts and times every call a root key makes to its backend (<c>kms_plugin_root_key_requests_total</c> and
/// <c>_duration_seconds</c> by provider, operation and outcome). It sits directly around the provider's key
/// (<see cref="PolicyRootKey"/>), so every remote call is seen whoever makes it: the envelope core's wraps and
/// unwraps, the health probe's canary, and the version follower's lookups.
/// </summary>
public sealed class MeteringPolicy(PluginMetrics metrics, string provider) : IRootKeyCallPolicy
{
    /// <summary><paramref name="key"/> metered, or unchanged when there are no metrics (one-shot commands such as doctor).</summary>
    public static IRootKey Decorate(IRootKey key, PluginMetrics? metrics)
    {
        ArgumentNullException.ThrowIfNull(key);
        return metrics is null ? key : PolicyRootKey.Decorate(key, new MeteringPolicy(metrics, key.Provider));
    }

    /// <summary>Runs one remote call and records its outcome and duration, whatever happens.</summary>
    public async Task<T> RunAsync<T>(RootKeyOperation operation, Func<CancellationToken, Task<T>> remoteCall, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(remoteCall);
        var label = operation switch
        {
            RootKeyOperation.Wrap => "wrap",
            RootKeyOperation.Unwrap => "unwrap",
            RootKeyOperation.ReadVersion => "read_version",
            _ => throw new ArgumentOutOfRangeException(nameof(operation), operation, "not a root key operation"),
        };
        RootKeyAttempts.ObserveInThisCall(failure =>
            metrics.RecordRootKeyAttempt(provider, label, failure is null ? RootKeyOutcomes.Ok : RootKeyOutcomes.Of(failure, cancellationToken)));
        var started = Stopwatch.GetTimestamp();
        T result;
        try
        {
            result = await remoteCall(cancellationToken);
        }
        catch (Exception e)
        {
            metrics.RecordRootKeyCall(provider, label, RootKeyOutcomes.Of(e, cancellationToken), Stopwatch.GetElapsedTime(started));
            throw;
        }

        metrics.RecordRootKeyCall(provider, label, RootKeyOutcomes.Ok, Stopwatch.GetElapsedTime(started));
        return result;
    }
}
