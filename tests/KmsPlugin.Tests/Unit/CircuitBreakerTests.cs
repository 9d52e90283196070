using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using Microsoft.Extensions.Time.Testing;

namespace KmsPlugin.Tests.Unit;

/// <summary>The breaker's state machine, driven by a fake clock: no test sleeps.</summary>
public sealed class CircuitBreakerTests
{
    private static readonly CircuitBreakerOptions Options = new()
    {
        FailureThreshold = 3,
        OpenInterval = TimeSpan.FromSeconds(5),
        MaxOpenInterval = TimeSpan.FromSeconds(20),
    };

    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-03-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private int _calls;

    private int Calls => Volatile.Read(ref _calls);

    private CircuitBreaker Create(CircuitBreakerOptions? options = null) => new("remote", options ?? Options, _time);

    private Task<int> FailAsync(CircuitBreaker breaker, KmsErrorKind kind = KmsErrorKind.RootKeyUnavailable, string message = "KMS answered 503") =>
        breaker.ExecuteAsync<int>(_ =>
        {
            Interlocked.Increment(ref _calls);
            throw new KmsPluginException(kind, message);
        }, CancellationToken.None);

    private Task<int> ThrowAsync(CircuitBreaker breaker, Exception error) =>
        breaker.ExecuteAsync<int>(_ =>
        {
            Interlocked.Increment(ref _calls);
            throw error;
        }, CancellationToken.None);

    private Task<int> SucceedAsync(CircuitBreaker breaker) =>
        breaker.ExecuteAsync(_ =>
        {
            Interlocked.Increment(ref _calls);
            return Task.FromResult(42);
        }, CancellationToken.None);

    private async Task OpenAsync(CircuitBreaker breaker, KmsErrorKind kind = KmsErrorKind.RootKeyUnavailable, string message = "KMS answered 503")
    {
        for (var i = 0; i < breaker.Options.FailureThreshold; i++)
        {
            await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker, kind, message));
        }

        Assert.Equal(CircuitState.Open, breaker.State);
    }

    private static async Task<KmsPluginException> FailsFastAsync(Task<int> call)
    {
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => call);
        Assert.Contains("circuit open", error.Message, StringComparison.Ordinal);
        return error;
    }

    [Fact]
    public async Task The_circuit_opens_after_the_threshold_of_consecutive_outage_failures_and_then_fails_fast_without_calling_the_remote()
    {
        var breaker = Create();
        for (var i = 0; i < Options.FailureThreshold - 1; i++)
        {
            await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker));
            Assert.Equal(CircuitState.Closed, breaker.State);
        }

        var last = await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker));
        Assert.Equal("KMS answered 503", last.Message); // the call that opens the circuit reports the remote's own error
        Assert.Equal(CircuitState.Open, breaker.State);

        for (var i = 0; i < 10; i++)
        {
            var error = await FailsFastAsync(FailAsync(breaker));
            Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
            Assert.Equal("root key 'remote' circuit open after 3 consecutive failures (last: KMS answered 503); next attempt in 5s", error.Message);
        }

        Assert.Equal(3, Calls);
        Assert.Equal(10, breaker.Rejections);
        Assert.Equal(1, breaker.Openings);
    }

    [Theory]
    [InlineData(KmsErrorKind.RootKeyUnavailable, KmsErrorKind.RootKeyUnavailable)]
    [InlineData(KmsErrorKind.Throttled, KmsErrorKind.Throttled)]
    [InlineData(KmsErrorKind.RootKeyDenied, KmsErrorKind.RootKeyUnavailable)]
    public async Task Outage_and_user_induced_failures_open_the_circuit_and_the_fast_failure_keeps_the_throttling_class(KmsErrorKind failure, KmsErrorKind failFast)
    {
        var breaker = Create();
        await OpenAsync(breaker, failure, "the remote said no");
        var error = await FailsFastAsync(SucceedAsync(breaker));
        Assert.Equal(failFast, error.Kind);
        Assert.Contains("(last: the remote said no)", error.Message, StringComparison.Ordinal);
        Assert.Equal(Options.FailureThreshold, Calls);
    }

    [Fact]
    public async Task Timeouts_inside_the_provider_count_as_outage_failures()
    {
        var breaker = Create();
        using var providerTimeout = new CancellationTokenSource();
        await providerTimeout.CancelAsync();
        await Assert.ThrowsAsync<TimeoutException>(() => ThrowAsync(breaker, new TimeoutException("no answer from the KMS within 5s")));
        await Assert.ThrowsAsync<OperationCanceledException>(() => ThrowAsync(breaker, new OperationCanceledException(providerTimeout.Token)));
        await Assert.ThrowsAsync<TaskCanceledException>(() => ThrowAsync(breaker, new TaskCanceledException("HttpClient.Timeout of 5 seconds elapsed")));
        Assert.Equal(CircuitState.Open, breaker.State);
        var error = await FailsFastAsync(SucceedAsync(breaker));
        Assert.Contains("timeout inside the provider", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Corruption_never_opens_the_circuit_and_does_not_reset_the_count_either()
    {
        var breaker = Create();
        for (var i = 0; i < 100; i++)
        {
            await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker, KmsErrorKind.Corruption, "wrapped KEK failed authentication"));
        }

        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.Equal(100, Calls);

        // Forged blobs interleaved with a real outage neither trip the breaker nor keep it closed.
        await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker));
        await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker));
        await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker, KmsErrorKind.Corruption, "forged"));
        Assert.Equal(CircuitState.Closed, breaker.State);
        await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker));
        Assert.Equal(CircuitState.Open, breaker.State);
        Assert.Contains("(last: KMS answered 503)", (await FailsFastAsync(SucceedAsync(breaker))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_requests_bugs_and_unexpected_exceptions_do_not_count()
    {
        var breaker = Create();
        for (var i = 0; i < 5; i++)
        {
            await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker, KmsErrorKind.InvalidRequest));
            await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker, KmsErrorKind.Internal));
            await Assert.ThrowsAsync<InvalidOperationException>(() => ThrowAsync(breaker, new InvalidOperationException("a bug")));
        }

        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.Equal(0, breaker.ConsecutiveFailures);
    }

    [Fact]
    public async Task A_success_resets_the_consecutive_failure_count()
    {
        var breaker = Create();
        await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker));
        await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker));
        Assert.Equal(42, await SucceedAsync(breaker));
        Assert.Equal(0, breaker.ConsecutiveFailures);
        await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker));
        await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker));
        Assert.Equal(CircuitState.Closed, breaker.State);
        await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker));
        Assert.Equal(CircuitState.Open, breaker.State);
    }

    [Fact]
    public async Task A_caller_giving_up_does_not_count()
    {
        var breaker = Create();
        for (var i = 0; i < 10; i++)
        {
            using var deadline = new CancellationTokenSource();
            var call = breaker.ExecuteAsync(async token =>
            {
                Interlocked.Increment(ref _calls);
                await Task.Delay(Timeout.Infinite, token);
                return 0;
            }, deadline.Token);
            await deadline.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        }

        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.Equal(10, Calls);
        Assert.Equal(0, breaker.ConsecutiveFailures);

        // An already-cancelled caller is turned away before the remote is called.
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => breaker.ExecuteAsync(_ => Task.FromResult(1), cancelled.Token));
        Assert.Equal(10, Calls);
    }

    [Fact]
    public async Task A_cancellation_after_the_slow_call_duration_is_the_plugins_own_timeout_and_counts()
    {
        var breaker = Create(Options with { SlowCallDuration = TimeSpan.FromSeconds(9) });
        async Task CancelAfterAsync(TimeSpan running)
        {
            using var rootKeyTimeout = new CancellationTokenSource();
            var call = breaker.ExecuteAsync(async token =>
            {
                Interlocked.Increment(ref _calls);
                await Task.Delay(Timeout.Infinite, token); // a remote that never answers
                return 0;
            }, rootKeyTimeout.Token);
            _time.Advance(running);
            await rootKeyTimeout.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        }

        await CancelAfterAsync(TimeSpan.FromSeconds(8)); // an impatient caller: neutral
        Assert.Equal(0, breaker.ConsecutiveFailures);
        for (var i = 0; i < Options.FailureThreshold; i++)
        {
            await CancelAfterAsync(TimeSpan.FromSeconds(9));
        }

        Assert.Equal(CircuitState.Open, breaker.State);
        Assert.Contains("(last: no answer within 9s)", (await FailsFastAsync(SucceedAsync(breaker))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task After_the_open_interval_one_trial_call_goes_through_and_its_success_closes_the_circuit()
    {
        var breaker = Create();
        await OpenAsync(breaker);
        _time.Advance(TimeSpan.FromSeconds(4));
        Assert.Contains("next attempt in 1s", (await FailsFastAsync(SucceedAsync(breaker))).Message, StringComparison.Ordinal);
        _time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.Contains("next attempt in 1s", (await FailsFastAsync(SucceedAsync(breaker))).Message, StringComparison.Ordinal);
        Assert.Equal(Options.FailureThreshold, Calls);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(42, await SucceedAsync(breaker));
        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.Equal(0, breaker.ConsecutiveFailures);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(42, await SucceedAsync(breaker));
        }

        Assert.Equal(Options.FailureThreshold + 6, Calls);
    }

    [Fact]
    public async Task Half_open_lets_exactly_one_trial_through_while_concurrent_callers_fail_fast()
    {
        var breaker = Create();
        await OpenAsync(breaker);
        _time.Advance(Options.OpenInterval);

        var release = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var trial = breaker.ExecuteAsync(_ =>
        {
            Interlocked.Increment(ref _calls);
            return release.Task;
        }, CancellationToken.None);
        Assert.Equal(CircuitState.HalfOpen, breaker.State);

        var concurrent = Enumerable.Range(0, 50).Select(_ => Task.Run(() => SucceedAsync(breaker))).ToList();
        foreach (var call in concurrent)
        {
            var error = await FailsFastAsync(call);
            Assert.EndsWith("a trial call is in progress", error.Message, StringComparison.Ordinal);
        }

        Assert.Equal(Options.FailureThreshold + 1, Calls); // the trial only
        release.SetResult(7);
        Assert.Equal(7, await trial);
        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.Equal(42, await SucceedAsync(breaker));
    }

    [Fact]
    public async Task A_failed_trial_reopens_for_twice_as_long_up_to_the_cap_and_closing_resets_the_interval()
    {
        var breaker = Create();
        await OpenAsync(breaker);
        var expectedIntervals = new[] { 10, 20, 20, 20 }; // 5 s doubled, capped at MaxOpenInterval = 20 s
        var wait = Options.OpenInterval;
        foreach (var seconds in expectedIntervals)
        {
            _time.Advance(wait - TimeSpan.FromMilliseconds(1));
            await FailsFastAsync(SucceedAsync(breaker)); // not yet
            _time.Advance(TimeSpan.FromMilliseconds(1));
            var callsBefore = Calls;
            await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker, message: "still down"));
            Assert.Equal(callsBefore + 1, Calls);
            Assert.Equal(CircuitState.Open, breaker.State);
            Assert.EndsWith($"(last: still down); next attempt in {seconds}s", (await FailsFastAsync(SucceedAsync(breaker))).Message, StringComparison.Ordinal);
            wait = TimeSpan.FromSeconds(seconds);
        }

        Assert.Equal(Options.FailureThreshold + expectedIntervals.Length, Calls);
        Assert.Equal(Options.FailureThreshold + expectedIntervals.Length, breaker.ConsecutiveFailures);

        _time.Advance(wait);
        Assert.Equal(42, await SucceedAsync(breaker));
        Assert.Equal(CircuitState.Closed, breaker.State);

        // A new outage starts again from the base interval.
        await OpenAsync(breaker);
        Assert.EndsWith("next attempt in 5s", (await FailsFastAsync(SucceedAsync(breaker))).Message, StringComparison.Ordinal);
        Assert.Equal(2, breaker.Openings);
    }

    [Fact]
    public async Task A_trial_that_ends_neutral_frees_the_trial_slot_for_the_next_caller()
    {
        var breaker = Create();
        await OpenAsync(breaker);
        _time.Advance(Options.OpenInterval);

        // A forged blob as the trial: says nothing about the remote, so the next caller gets to try.
        await Assert.ThrowsAsync<KmsPluginException>(() => FailAsync(breaker, KmsErrorKind.Corruption, "forged"));
        Assert.Equal(CircuitState.HalfOpen, breaker.State);

        // A trial whose caller gives up: the same.
        using var deadline = new CancellationTokenSource();
        var abandoned = breaker.ExecuteAsync(async token =>
        {
            Interlocked.Increment(ref _calls);
            await Task.Delay(Timeout.Infinite, token);
            return 0;
        }, deadline.Token);
        await deadline.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);
        Assert.Equal(CircuitState.HalfOpen, breaker.State);

        Assert.Equal(42, await SucceedAsync(breaker));
        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.Equal(Options.FailureThreshold + 3, Calls);
    }

    [Fact]
    public async Task A_slow_failure_that_started_before_the_circuit_opened_does_not_extend_the_open_interval()
    {
        var breaker = Create();
        var slow = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var straggler = breaker.ExecuteAsync(_ => slow.Task, CancellationToken.None);
        await OpenAsync(breaker);
        _time.Advance(TimeSpan.FromSeconds(3));
        slow.SetException(new KmsPluginException(KmsErrorKind.RootKeyUnavailable, "late 503"));
        await Assert.ThrowsAsync<KmsPluginException>(() => straggler);
        var error = await FailsFastAsync(SucceedAsync(breaker));
        Assert.EndsWith("(last: KMS answered 503); next attempt in 2s", error.Message, StringComparison.Ordinal);
        Assert.Equal(Options.FailureThreshold, breaker.ConsecutiveFailures);
    }

    [Fact]
    public void Invalid_options_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Create(Options with { FailureThreshold = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Create(Options with { OpenInterval = TimeSpan.Zero }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Create(Options with { MaxOpenInterval = TimeSpan.FromSeconds(1) }));
    }
}
