using System.Globalization;
using System.Net.Http.Headers;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// A server's requested wait (HTTP <c>Retry-After</c>, RFC 9110 section 10.2.3) carried on a typed error, and the
/// shared <see cref="RetryPolicy"/> run that honours it without outliving the caller: a wait longer than the policy's
/// <see cref="RetryPolicy.MaxDelay"/> is not slept on — the error is reported at once (as Throttled or Unavailable),
/// because kube-apiserver's deadline (3 s by default) would expire first and the apiserver retries on its own.
/// </summary>
public static class RetryAfter
{
    private const string DataKey = "KmsPlugin.RetryAfter";

    /// <summary>Attaches the server's requested wait (if any) to <paramref name="error"/> and returns it.</summary>
    public static KmsPluginException With(this KmsPluginException error, TimeSpan? wait)
    {
        ArgumentNullException.ThrowIfNull(error);
        if (wait is { } value)
        {
            error.Data[DataKey] = value;
        }

        return error;
    }

    public static TimeSpan? Of(KmsPluginException error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return error.Data[DataKey] as TimeSpan?;
    }

    /// <summary>
    /// Parses <c>Retry-After</c> (delta-seconds or an HTTP date) and the millisecond variants Azure services send
    /// (<c>retry-after-ms</c>, <c>x-ms-retry-after-ms</c>); null when absent or unparsable.
    /// </summary>
    public static TimeSpan? Parse(string? retryAfter, string? retryAfterMs, DateTimeOffset now)
    {
        if (retryAfterMs is not null && double.TryParse(retryAfterMs, NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) && ms >= 0)
        {
            return TimeSpan.FromMilliseconds(ms);
        }

        if (retryAfter is null)
        {
            return null;
        }

        if (long.TryParse(retryAfter, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            return TimeSpan.FromSeconds(Math.Min(seconds, int.MaxValue));
        }

        return RetryConditionHeaderValue.TryParse(retryAfter, out var header) && header.Date is { } date
            ? (date > now ? date - now : TimeSpan.Zero)
            : null;
    }

    /// <summary>
    /// <see cref="RetryPolicy.RunAsync{T}"/> with <see cref="Of"/> as the server hint, except that a failure whose
    /// requested wait exceeds <see cref="RetryPolicy.MaxDelay"/> ends the run immediately.
    /// </summary>
    public static async Task<T> RunAsync<T>(RetryPolicy policy, Func<int, CancellationToken, Task<T>> call, TimeProvider time,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(call);
        try
        {
            return await policy.RunAsync(async (attempt, token) =>
            {
                try
                {
                    return await call(attempt, token);
                }
                catch (KmsPluginException e) when (Of(e) is { } wait && wait > policy.MaxDelay)
                {
                    throw new TooLongToWaitException(e);
                }
            }, time, cancellationToken, Of);
        }
        catch (TooLongToWaitException e)
        {
            throw e.Error;
        }
    }

    /// <summary>Carries an error past <see cref="RetryPolicy"/> (which only retries <see cref="KmsPluginException"/>s).</summary>
    private sealed class TooLongToWaitException(KmsPluginException error) : Exception(error.Message, error)
    {
        public KmsPluginException Error { get; } = error;
    }
}
