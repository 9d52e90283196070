using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using Microsoft.Extensions.Logging;

namespace KmsPlugin.Core.Envelope;

/// <summary>
/// Probes the primary root key in the background (wrap + unwrap of a random canary) at a bounded rate, so Status
/// can answer from memory: the apiserver polls Status every 10 s to 1 min per apiserver and the KEP asks plugins to
/// keep it cheap. When unhealthy it probes faster (every <c>min(interval, 10 s)</c>) to notice recovery.
/// </summary>
public sealed class RootKeyHealthMonitor
{
    private static readonly byte[] CanaryAad = "k8s-kms-plugin/health-probe/v1"u8.ToArray();
    private readonly Func<RootKeyRing> _ring;
    private readonly TimeProvider _time;
    private readonly IRandomSource _random;
    private readonly ILogger _logger;
    private HealthState _state;
    private DateTimeOffset _lastLogged = DateTimeOffset.MinValue;

    public RootKeyHealthMonitor(Func<RootKeyRing> ring, TimeSpan interval, TimeSpan timeout, TimeProvider time, IRandomSource random, ILogger logger)
    {
        _ring = ring;
        Interval = interval;
        Timeout = timeout;
        _time = time;
        _random = random;
        _logger = logger;
        _state = HealthState.Starting(time.GetUtcNow());
    }

    public TimeSpan Interval { get; }

    public TimeSpan Timeout { get; }

    public HealthState Current => Volatile.Read(ref _state);

    public async Task<HealthState> ProbeOnceAsync(CancellationToken cancellationToken)
    {
        var primary = _ring().Primary;
        HealthState next;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        var canary = new byte[LocalKek.KeyBytes];
        _random.Fill(canary);
        try
        {
            var wrapped = await primary.WrapAsync(canary, CanaryAad, timeout.Token);
            using var unwrapped = await primary.UnwrapAsync(wrapped, CanaryAad, timeout.Token);
            next = unwrapped.Span.SequenceEqual(canary)
                ? new HealthState(true, "ok", _time.GetUtcNow())
                : new HealthState(false, $"root key '{primary.Name}' ({primary.Provider}) returned a different canary on unwrap", _time.GetUtcNow());
        }
        catch (KmsPluginException e)
        {
            // Most provider and breaker messages already start with "root key 'name'": do not say it twice.
            var named = $"root key '{primary.Name}'";
            var detail = e.Message.StartsWith(named, StringComparison.Ordinal) ? e.Message[named.Length..].TrimStart(' ', ':') : e.Message;
            next = new HealthState(false, $"{named} ({primary.Provider}): {detail}", _time.GetUtcNow());
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            next = new HealthState(false, $"root key '{primary.Name}' ({primary.Provider}) did not answer within {Timeout.TotalSeconds:0.#}s", _time.GetUtcNow());
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _logger.LogError(e, "root key {RootKey} probe failed unexpectedly", primary.Name);
            next = new HealthState(false, $"root key '{primary.Name}' ({primary.Provider}) probe failed: {e.GetType().Name}", _time.GetUtcNow());
        }
        finally
        {
            Array.Clear(canary);
        }

        var previous = Interlocked.Exchange(ref _state, next);

        // Log every change of verdict; while unhealthy, a changed reason (e.g. a breaker's countdown) at most once a minute.
        var now = _time.GetUtcNow();
        if (previous.Healthy != next.Healthy || (previous.Reason != next.Reason && now - _lastLogged >= TimeSpan.FromMinutes(1)))
        {
            _lastLogged = now;
            if (next.Healthy)
            {
                _logger.LogInformation("root key {RootKey} ({Provider}, key_id {KeyIdHash}) is healthy", primary.Name, primary.Provider, KeyIdHash.Of(primary.KeyId));
            }
            else
            {
                _logger.LogWarning("root key {RootKey} ({Provider}, key_id {KeyIdHash}) is unhealthy: {Reason}", primary.Name, primary.Provider, KeyIdHash.Of(primary.KeyId), next.Reason);
            }
        }

        return next;
    }

    /// <param name="afterProbe">Runs after each probe (the version follower); its failures are its own to log.</param>
    public async Task RunAsync(CancellationToken stoppingToken, Func<CancellationToken, Task>? afterProbe = null)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var state = await ProbeOnceAsync(stoppingToken);
            if (afterProbe is not null)
            {
                try
                {
                    await afterProbe(stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
            }

            var wait = state.Healthy ? Interval : TimeSpan.FromTicks(Math.Min(Interval.Ticks, TimeSpan.FromSeconds(10).Ticks));
            try
            {
                await Task.Delay(wait, _time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
