using Microsoft.Extensions.Time.Testing;
using Net.Pkcs11Interop.Common;

namespace KmsPlugin.Pkcs11.Tests;

/// <summary>The spacing of C_Login calls after a failure that was not the PIN's (the wiring is in TokenRemovalTests).</summary>
public sealed class LoginBackoffTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    [Fact]
    public void Without_a_failure_login_is_not_held_back()
    {
        var backoff = new Pkcs11LoginBackoff(Interval, new FakeTimeProvider());

        Assert.False(backoff.TryGetRecentFailure(out _, out _));
    }

    [Fact]
    public void After_a_failure_login_is_held_back_for_the_interval_then_allowed_once_more()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero));
        var backoff = new Pkcs11LoginBackoff(Interval, time);

        backoff.RecordFailure(CKR.CKR_DEVICE_ERROR);

        Assert.True(backoff.TryGetRecentFailure(out var failure, out var retryAfter));
        Assert.Equal(CKR.CKR_DEVICE_ERROR, failure);
        Assert.Equal(time.GetUtcNow() + Interval, retryAfter);
        time.Advance(Interval - TimeSpan.FromMilliseconds(1));
        Assert.True(backoff.TryGetRecentFailure(out _, out _));
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.False(backoff.TryGetRecentFailure(out _, out _));
    }

    [Fact]
    public void A_successful_login_clears_the_failure()
    {
        var backoff = new Pkcs11LoginBackoff(Interval, new FakeTimeProvider());
        backoff.RecordFailure(CKR.CKR_TOKEN_NOT_PRESENT);

        backoff.RecordSuccess();

        Assert.False(backoff.TryGetRecentFailure(out _, out _));
    }

    [Fact]
    public void The_description_names_the_failure_and_when_login_is_tried_again()
    {
        var text = Pkcs11LoginBackoff.Describe(CKR.CKR_DEVICE_ERROR, new DateTimeOffset(2025, 1, 2, 3, 4, 15, TimeSpan.Zero), Interval);

        Assert.Equal("C_Login failed with CKR_DEVICE_ERROR; to spare the token it is not tried again before 03:04:15Z (at most once every 10s)", text);
    }
}
