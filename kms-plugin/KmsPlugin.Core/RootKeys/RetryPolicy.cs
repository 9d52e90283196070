using KmsPlugin.Core.Errors;

namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// Bounded retries for remote root-key calls, shared by every remote provider so they behave alike: only
/// transient failures (<see cref="KmsErrorKind.RootKeyUnavailable"/>) and throttling (<see cref="KmsErrorKind.Throttled"/>)
/// are retried, with full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff and Jitter");
/// waits run on the caller's token, so a retry never outlives the gRPC deadline; a server's Retry-After wins when longer.
/// User-induced failures (denied, disabled, not found) and corruption are never retried.
/// </summary>
public sealed record RetryPolicy
{
    public static RetryPolicy Default { get; } = new();

    /// <summary>Total attempts, the first included.</summary>
    public int MaxAttempts { get; init; } = 3;

    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(2);

    public static bool IsRetryable(KmsPluginException error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return error.Kind is KmsErrorKind.RootKeyUnavailable or KmsErrorKind.Throttled;
    }

    /// <summary>
    /// Runs <paramref name="call"/> until it succeeds, fails for good, or attempts run out.
    /// <paramref name="retryAfter"/> extracts a server-requested wait from a failure, if any.
    /// </summary>
    public async Task<T> RunAsync<T>(Func<int, CancellationToken, Task<T>> call, TimeProvider time, CancellationToken cancellationToken,
        Func<KmsPluginException, TimeSpan?>? retryAfter = null, Func<double>? jitter = null)
    {
        ArgumentNullException.ThrowIfNull(call);
        ArgumentNullException.ThrowIfNull(time);
        jitter ??= Random.Shared.NextDouble;
        for (var attempt = 1; ; attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                T result;
                try
                {
                    result = await call(attempt, cancellationToken);
                }
                catch (Exception e)
                {
                    RootKeyAttempts.Report(e); // every try is visible (kms_plugin_root_key_attempts_total), not only the call's outcome
                    throw;
                }

                RootKeyAttempts.Report(null);
                return result;
            }
            catch (KmsPluginException e) when (attempt < MaxAttempts && IsRetryable(e))
            {
                var ceiling = Math.Min(MaxDelay.Ticks, BaseDelay.Ticks * (1L << Math.Min(attempt - 1, 30)));
                var delay = TimeSpan.FromTicks((long)(ceiling * jitter()));
                if (retryAfter?.Invoke(e) is { } requested && requested > delay)
                {
                    delay = requested;
                }

                await Task.Delay(delay, time, cancellationToken);
            }
        }
    }
}
