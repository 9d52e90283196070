using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;
using Microsoft.Extensions.Time.Testing;

namespace KmsPlugin.Vault.Tests;

/// <summary>
/// Every fault the Vault fake injects: the error kind the plugin reports and how many requests reached Vault
/// (bounded retries for 5xx / 429 / unreadable responses; none for denials and corruption; one re-login for 403).
/// </summary>
public sealed class VaultFaultTests : IAsyncLifetime, IDisposable
{
    private static readonly int MaxAttempts = VaultTestOptions.FastRetry.MaxAttempts;
    private readonly TempDirectory _dir = new();
    private FakeVault _vault = null!;

    public async Task InitializeAsync()
    {
        _vault = await FakeVault.StartAsync();
        _vault.CreateKey();
    }

    public async Task DisposeAsync() => await _vault.DisposeAsync();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<FaultKind, string, KmsErrorKind, int, string> Faults => new()
    {
        { FaultKind.InternalError, "encrypt", KmsErrorKind.RootKeyUnavailable, MaxAttempts, "internal error" },
        { FaultKind.ServiceUnavailable, "encrypt", KmsErrorKind.RootKeyUnavailable, MaxAttempts, "sealed" },
        { FaultKind.Throttling, "encrypt", KmsErrorKind.Throttled, MaxAttempts, "rate limit quota exceeded" },
        { FaultKind.Malformed, "encrypt", KmsErrorKind.RootKeyUnavailable, MaxAttempts, "could not be read" },
        { FaultKind.AccessDenied, "encrypt", KmsErrorKind.RootKeyDenied, 2, "permission denied" },
        { FaultKind.Disabled, "encrypt", KmsErrorKind.RootKeyDenied, 1, "minimum encryption key version" },
        { FaultKind.NotFound, "encrypt", KmsErrorKind.RootKeyDenied, 1, "encryption key not found" },
        { FaultKind.InternalError, "decrypt", KmsErrorKind.RootKeyUnavailable, MaxAttempts, "internal error" },
        { FaultKind.Throttling, "decrypt", KmsErrorKind.Throttled, MaxAttempts, "rate limit quota exceeded" },
        { FaultKind.TamperCiphertext, "decrypt", KmsErrorKind.Corruption, 1, "message authentication failed" },
        { FaultKind.Disabled, "decrypt", KmsErrorKind.RootKeyDenied, 1, "too old" },
        { FaultKind.NotFound, "decrypt", KmsErrorKind.RootKeyDenied, 1, "encryption key not found" },
    };

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task Each_injected_fault_is_classified_and_retried_only_when_a_retry_can_help(FaultKind fault, string operation, KmsErrorKind expected,
        int attempts, string named)
    {
        using var root = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None);
        var wrapped = await root.WrapAsync(RandomNumberGenerator.GetBytes(32), VaultTestOptions.Aad(), CancellationToken.None);
        var before = _vault.Calls(operation);
        _vault.Fault = new FakeFault(fault, operation);

        var error = await Assert.ThrowsAsync<KmsPluginException>(async () =>
        {
            if (operation == "encrypt")
            {
                await root.WrapAsync(RandomNumberGenerator.GetBytes(32), VaultTestOptions.Aad(), CancellationToken.None);
            }
            else
            {
                using var _ = await root.UnwrapAsync(wrapped, VaultTestOptions.Aad(), CancellationToken.None);
            }
        });

        Assert.Equal(expected, error.Kind);
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
        Assert.Contains("'vault-test'", error.Message, StringComparison.Ordinal);
        Assert.Equal(attempts, _vault.Calls(operation) - before);
    }

    [Fact]
    public async Task A_transient_failure_is_retried_and_the_call_succeeds()
    {
        using var root = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None);
        _vault.Fault = new FakeFault(FaultKind.ServiceUnavailable, "encrypt", times: 2);

        await root.WrapAsync(RandomNumberGenerator.GetBytes(32), VaultTestOptions.Aad(), CancellationToken.None);

        Assert.Equal(3, _vault.Calls("encrypt"));
    }

    [Fact]
    public async Task A_429_is_retried_after_the_Retry_After_the_server_asked_for()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var options = VaultTestOptions.Kubernetes(_vault, _dir) with { Time = clock };
        using var root = await VaultTransitRootKey.OpenAsync(options, CancellationToken.None);
        _vault.Fault = new FakeFault(FaultKind.Throttling, "encrypt", times: 1) { RetryAfterSeconds = 1 };

        var wrap = root.WrapAsync(RandomNumberGenerator.GetBytes(32), VaultTestOptions.Aad(), CancellationToken.None);

        // Move the clock in small steps until the wrap completes. Its retry waits on the clock, so the total advanced
        // shows how long it waited: at least the second Vault asked for (its own backoff here would be ~0).
        var advanced = TimeSpan.Zero;
        await WaitForAsync(() => _vault.Calls("encrypt") == 1);
        while (!wrap.IsCompleted && advanced < TimeSpan.FromSeconds(10))
        {
            clock.Advance(TimeSpan.FromMilliseconds(50));
            advanced += TimeSpan.FromMilliseconds(50);
            await Task.WhenAny(wrap, Task.Delay(10));
        }

        await wrap;
        Assert.True(advanced >= TimeSpan.FromSeconds(1), $"the retry came after {advanced.TotalMilliseconds} ms of clock time");
        Assert.Equal(2, _vault.Calls("encrypt"));
    }

    [Fact]
    public async Task A_429_asking_for_longer_than_the_retry_budget_is_reported_at_once()
    {
        using var root = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None);
        _vault.Fault = new FakeFault(FaultKind.Throttling, "encrypt") { RetryAfterSeconds = 60 };

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => root.WrapAsync(RandomNumberGenerator.GetBytes(32), VaultTestOptions.Aad(), CancellationToken.None));

        Assert.Equal(KmsErrorKind.Throttled, error.Kind);
        Assert.Equal(1, _vault.Calls("encrypt"));
        Assert.Equal(TimeSpan.FromSeconds(60), RetryAfter.Of(error));
    }

    [Fact]
    public async Task A_Vault_slower_than_the_request_timeout_is_unavailable_after_bounded_attempts()
    {
        // A request timeout long enough for every attempt to reach the fake even on a loaded CI machine.
        using var root = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir) with { RequestTimeout = TimeSpan.FromSeconds(1) },
            CancellationToken.None);
        _vault.Fault = new FakeFault(FaultKind.None, "encrypt", latency: TimeSpan.FromSeconds(30));
        var attempts = new System.Collections.Concurrent.ConcurrentQueue<Exception?>();

        var error = await Assert.ThrowsAsync<KmsPluginException>(async () =>
        {
            RootKeyAttempts.ObserveInThisCall(attempts.Enqueue);
            await root.WrapAsync(RandomNumberGenerator.GetBytes(32), VaultTestOptions.Aad(), CancellationToken.None);
        });

        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
        Assert.Contains("timed out", error.Message, StringComparison.Ordinal);
        Assert.Equal(MaxAttempts, attempts.Count);
        Assert.Equal(MaxAttempts, _vault.Calls("encrypt"));
    }

    [Fact]
    public async Task The_callers_deadline_cancels_the_Vault_call_itself_and_is_not_retried()
    {
        using var root = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None);
        _vault.Fault = new FakeFault(FaultKind.None, "encrypt", latency: TimeSpan.FromSeconds(30));
        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => root.WrapAsync(RandomNumberGenerator.GetBytes(32), VaultTestOptions.Aad(), deadline.Token));

        Assert.Equal(1, _vault.Calls("encrypt"));
        await WaitForAsync(() => _vault.Aborted == 1);
    }

    [Fact]
    public async Task An_unreachable_Vault_is_unavailable()
    {
        var options = VaultTestOptions.Kubernetes(_vault, _dir) with { KeyVersion = 1 };
        using var root = await VaultTransitRootKey.OpenAsync(options, CancellationToken.None);
        await _vault.DisposeAsync(); // nothing listens on the port any more

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => root.WrapAsync(RandomNumberGenerator.GetBytes(32), VaultTestOptions.Aad(), CancellationToken.None));

        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
        Assert.Contains("cannot reach Vault", error.Message, StringComparison.Ordinal);
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        for (var i = 0; i < 250 && !condition(); i++)
        {
            await Task.Delay(20);
        }

        Assert.True(condition());
    }
}
