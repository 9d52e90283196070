using System.Globalization;
using KmsPlugin.Core.Errors;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// A closed → open → half-open circuit breaker for the calls to one remote root key, so an outage is not answered by
/// every apiserver request (and every retry of it) hammering a KMS that is already failing.
/// <list type="bullet">
/// <item>Closed: calls go through. <see cref="CircuitBreakerOptions.FailureThreshold"/> consecutive outage-class
/// failures open the circuit: <see cref="KmsErrorKind.RootKeyUnavailable"/> and <see cref="KmsErrorKind.Throttled"/>
/// (what <see cref="RetryPolicy.IsRetryable"/> retries), <see cref="KmsErrorKind.RootKeyDenied"/> (permission revoked,
/// key disabled: the remote will keep refusing), and timeouts or cancellations the caller did not ask for.</item>
/// <item>Open: calls fail at once, without a remote call, with <see cref="KmsErrorKind.RootKeyUnavailable"/> (or
/// <see cref="KmsErrorKind.Throttled"/> when the last failure was throttling) and a message that carries the last
/// failure's reason and when the next attempt is.</item>
/// <item>Half-open: once the open interval has passed, exactly one trial call reaches the remote (the background
/// health probe is the natural one); every concurrent call still fails fast. Success closes the circuit; failure
/// reopens it for twice the previous interval, up to <see cref="CircuitBreakerOptions.MaxOpenInterval"/>.</item>
/// </list>
/// Neutral outcomes neither count nor reset the count: <see cref="KmsErrorKind.Corruption"/> (anyone who can reach the
/// socket can send a forged blob; letting garbage open the circuit would hand an attacker a denial of service, and
/// letting it reset the count would let them keep the circuit closed during an outage), a cancellation by the caller
/// (an impatient apiserver says nothing about the remote), and bugs (<see cref="KmsErrorKind.Internal"/>, unexpected
/// exception types). A cancellation by the caller after <see cref="CircuitBreakerOptions.SlowCallDuration"/> is not
/// the caller giving up but the plugin's own root-key timeout, and counts. A neutral trial frees the trial slot for
/// the next caller.
/// Outcomes of calls that started before the last state change are ignored, so a slow failure that began while
/// closed cannot extend an open interval and a late success cannot close a circuit whose trial is still running.
/// Time comes from the injected <see cref="TimeProvider"/>; the breaker never sleeps or starts timers.
/// </summary>
public sealed class CircuitBreaker
{
    private readonly CircuitBreakerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private CircuitState _state = CircuitState.Closed;
    private long _generation;
    private int _consecutiveFailures;
    private TimeSpan _openInterval;
    private DateTimeOffset _openedAt;
    private DateTimeOffset _retryAt;
    private bool _trialInFlight;
    private KmsErrorKind _lastKind = KmsErrorKind.RootKeyUnavailable;
    private string _lastReason = "";
    private long _rejections;
    private long _openings;

    public CircuitBreaker(string name, CircuitBreakerOptions options, TimeProvider time, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        options.Validate();
        Name = name;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        _openInterval = options.OpenInterval;
    }

    /// <summary>The root key's name, for messages and logs.</summary>
    public string Name { get; }

    public CircuitBreakerOptions Options => _options;

    /// <summary>The current state. An open circuit whose interval has passed reads <see cref="CircuitState.Open"/> until the next call makes it the trial.</summary>
    public CircuitState State
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    /// <summary>Outage-class failures since the last success (still counting while open: each failed trial adds one).</summary>
    public int ConsecutiveFailures
    {
        get
        {
            lock (_lock)
            {
                return _consecutiveFailures;
            }
        }
    }

    /// <summary>Calls failed fast without reaching the remote, since the process started.</summary>
    public long Rejections => Interlocked.Read(ref _rejections);

    /// <summary>Times the circuit went from closed to open, since the process started.</summary>
    public long Openings => Interlocked.Read(ref _openings);

    /// <summary>
    /// Runs <paramref name="call"/> (one remote call, its retries included) if the circuit lets it through, and
    /// records its outcome; otherwise throws at once.
    /// </summary>
    /// <param name="call">The remote call.</param>
    /// <param name="cancellationToken">The caller's token: a cancellation through it is the caller giving up, which does not
    /// count, unless the call had run for <see cref="CircuitBreakerOptions.SlowCallDuration"/>.</param>
    /// <param name="successCloses">False for calls whose success does not prove the key usable (a version lookup can
    /// succeed on a key whose wraps are denied): their failures count, their success is neutral.</param>
    /// <exception cref="KmsPluginException">The circuit is open (or half-open with its trial call in flight).</exception>
    public async Task<T> ExecuteAsync<T>(Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken, bool successCloses = true)
    {
        ArgumentNullException.ThrowIfNull(call);
        cancellationToken.ThrowIfCancellationRequested();
        var permit = Enter();
        var started = _time.GetTimestamp();
        T result;
        try
        {
            result = await call(cancellationToken);
        }
        catch (Exception e)
        {
            if (AsOutageFailure(e, _time.GetElapsedTime(started), cancellationToken) is { } failure)
            {
                RecordFailure(permit, failure.Kind, failure.Reason);
            }
            else
            {
                RecordNeutral(permit);
            }

            throw;
        }

        if (successCloses)
        {
            RecordSuccess(permit);
        }
        else
        {
            RecordNeutral(permit);
        }

        return result;
    }

    /// <summary>The failure an exception counts as, or null when it is neutral (see the class remarks).</summary>
    private (KmsErrorKind Kind, string Reason)? AsOutageFailure(Exception error, TimeSpan elapsed, CancellationToken callerToken) => error switch
    {
        KmsPluginException e when RetryPolicy.IsRetryable(e) || e.Kind == KmsErrorKind.RootKeyDenied => (e.Kind, e.Message),
        KmsPluginException { Kind: KmsErrorKind.DeadlineExceeded } e when !callerToken.IsCancellationRequested => (KmsErrorKind.RootKeyUnavailable, e.Message),
        OperationCanceledException when !callerToken.IsCancellationRequested =>
            (KmsErrorKind.RootKeyUnavailable, "the provider gave up waiting for an answer (a timeout inside the provider)"),
        OperationCanceledException when _options.SlowCallDuration is { } slow && elapsed >= slow =>
            (KmsErrorKind.RootKeyUnavailable, $"no answer within {elapsed.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture)}s"),
        TimeoutException e => (KmsErrorKind.RootKeyUnavailable, e.Message),
        _ => null,
    };

    private Permit Enter()
    {
        lock (_lock)
        {
            switch (_state)
            {
                case CircuitState.Closed:
                    return new Permit(_generation, IsTrial: false);

                case CircuitState.Open when _time.GetUtcNow() >= _retryAt:
                    _state = CircuitState.HalfOpen;
                    _generation++;
                    _trialInFlight = true;
                    return new Permit(_generation, IsTrial: true);

                case CircuitState.HalfOpen when !_trialInFlight:
                    _trialInFlight = true;
                    return new Permit(_generation, IsTrial: true);

                default:
                    Interlocked.Increment(ref _rejections);
                    throw OpenException();
            }
        }
    }

    /// <summary>The fail-fast error: the last failure's kind class and reason, and when the next attempt is. Called under the lock.</summary>
    private KmsPluginException OpenException()
    {
        var failures = _consecutiveFailures == 1 ? "1 consecutive failure" : $"{_consecutiveFailures} consecutive failures";
        var next = _state == CircuitState.HalfOpen
            ? "a trial call is in progress"
            : $"next attempt in {WholeSeconds(_retryAt - _time.GetUtcNow())}s";
        var kind = _lastKind == KmsErrorKind.Throttled ? KmsErrorKind.Throttled : KmsErrorKind.RootKeyUnavailable;
        return new KmsPluginException(kind, $"root key '{Name}' circuit open after {failures} (last: {_lastReason}); {next}");
    }

    /// <summary>Seconds rounded up, so a wait that has not quite ended never reads "0s".</summary>
    private static string WholeSeconds(TimeSpan remaining) =>
        Math.Max(1, (long)Math.Ceiling(remaining.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    private void RecordSuccess(Permit permit)
    {
        TimeSpan? closedAfter = null;
        lock (_lock)
        {
            if (permit.Generation != _generation)
            {
                return;
            }

            _consecutiveFailures = 0;
            if (_state != CircuitState.Closed)
            {
                closedAfter = _time.GetUtcNow() - _openedAt;
                _state = CircuitState.Closed;
                _generation++;
                _trialInFlight = false;
                _openInterval = _options.OpenInterval;
            }
        }

        if (closedAfter is { } open)
        {
            _logger.LogInformation("root key {RootKey} circuit closed: a trial call succeeded after {OpenSeconds:0.#}s open", Name, open.TotalSeconds);
        }
    }

    private void RecordFailure(Permit permit, KmsErrorKind kind, string reason)
    {
        bool opened;
        TimeSpan interval;
        int failures;
        lock (_lock)
        {
            if (permit.Generation != _generation)
            {
                return;
            }

            _lastKind = kind;
            _lastReason = reason;
            failures = ++_consecutiveFailures;
            var now = _time.GetUtcNow();
            if (_state == CircuitState.Closed)
            {
                if (failures < _options.FailureThreshold)
                {
                    return;
                }

                opened = true;
                _openedAt = now;
                _openInterval = _options.OpenInterval;
                Interlocked.Increment(ref _openings);
            }
            else
            {
                // The trial failed: stay away twice as long, up to the cap.
                opened = false;
                _openInterval = _openInterval >= _options.MaxOpenInterval / 2 ? _options.MaxOpenInterval : _openInterval * 2;
            }

            interval = _openInterval;
            _state = CircuitState.Open;
            _generation++;
            _trialInFlight = false;
            _retryAt = now + interval;
        }

        if (opened)
        {
            _logger.LogWarning("root key {RootKey} circuit opened after {Failures} consecutive failures (last: {Reason}); calls fail fast for {OpenSeconds:0.#}s",
                Name, failures, reason, interval.TotalSeconds);
        }
        else
        {
            _logger.LogWarning("root key {RootKey} circuit trial call failed ({Reason}); calls fail fast for {OpenSeconds:0.#}s", Name, reason, interval.TotalSeconds);
        }
    }

    private void RecordNeutral(Permit permit)
    {
        if (!permit.IsTrial)
        {
            return;
        }

        lock (_lock)
        {
            if (permit.Generation == _generation)
            {
                _trialInFlight = false; // the next caller becomes the trial
            }
        }
    }

    /// <summary>Which state a call was admitted in; <see cref="IsTrial"/> marks the single half-open trial.</summary>
    private readonly record struct Permit(long Generation, bool IsTrial);
}
