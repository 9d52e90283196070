using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Tests.Unit;

public sealed class RetryPolicyTests
{
    private static readonly RetryPolicy Fast = new() { MaxAttempts = 3, BaseDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(5) };

    [Theory]
    [InlineData(KmsErrorKind.RootKeyUnavailable, 3)]
    [InlineData(KmsErrorKind.Throttled, 3)]
    [InlineData(KmsErrorKind.RootKeyDenied, 1)]
    [InlineData(KmsErrorKind.Corruption, 1)]
    [InlineData(KmsErrorKind.InvalidRequest, 1)]
    public async Task Only_transient_and_throttled_failures_are_retried_and_attempts_are_bounded(KmsErrorKind kind, int expectedAttempts)
    {
        var attempts = 0;
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => Fast.RunAsync<int>((_, _) =>
        {
            attempts++;
            throw new KmsPluginException(kind, "boom");
        }, TimeProvider.System, CancellationToken.None));
        Assert.Equal(kind, error.Kind);
        Assert.Equal(expectedAttempts, attempts);
    }

    [Fact]
    public async Task A_transient_failure_then_success_returns_the_result()
    {
        var result = await Fast.RunAsync((attempt, _) => attempt < 3
            ? throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable, "503")
            : Task.FromResult(attempt), TimeProvider.System, CancellationToken.None);
        Assert.Equal(3, result);
    }

    [Fact]
    public async Task Backoff_never_outlives_the_callers_deadline()
    {
        var slow = new RetryPolicy { MaxAttempts = 10, BaseDelay = TimeSpan.FromSeconds(5), MaxDelay = TimeSpan.FromSeconds(5) };
        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var started = DateTime.UtcNow;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => slow.RunAsync<int>(
            (_, _) => throw new KmsPluginException(KmsErrorKind.Throttled, "slow down"), TimeProvider.System, deadline.Token, jitter: () => 1.0));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(20)); // 9 waits of 5 s would take 45 s
    }

    [Fact]
    public async Task A_longer_retry_after_from_the_server_is_honoured()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var attempts = 0;
        var run = Fast.RunAsync((attempt, _) =>
        {
            attempts = attempt;
            return attempt == 1 ? throw new KmsPluginException(KmsErrorKind.Throttled, "429") : Task.FromResult(attempt);
        }, time, CancellationToken.None, retryAfter: _ => TimeSpan.FromSeconds(30));
        time.Advance(TimeSpan.FromSeconds(29));
        await Task.Delay(50);
        Assert.Equal(1, attempts);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(2, await run);
    }
}
