using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Aws.Tests;

/// <summary>
/// Every fault the KMS fake injects, through the real SDK: the error kind the plugin reports, and how many attempts
/// reached KMS (the SDK's own retries are off; RetryPolicy's are bounded and counted here).
/// </summary>
public sealed class AwsFaultTests : IAsyncLifetime
{
    private static readonly int MaxAttempts = AwsTestOptions.FastRetry.MaxAttempts;
    private FakeAwsKms _kms = null!;
    private FakeKmsKey _key = null!;

    public async Task InitializeAsync()
    {
        _kms = await FakeAwsKms.StartAsync();
        _key = _kms.CreateKey();
    }

    public async Task DisposeAsync() => await _kms.DisposeAsync();

    public static TheoryData<FaultKind, string, KmsErrorKind, int, string> Faults => new()
    {
        { FaultKind.InternalError, "Encrypt", KmsErrorKind.RootKeyUnavailable, MaxAttempts, "KMSInternalException" },
        { FaultKind.ServiceUnavailable, "Encrypt", KmsErrorKind.RootKeyUnavailable, MaxAttempts, "503" },
        { FaultKind.Throttling, "Encrypt", KmsErrorKind.Throttled, MaxAttempts, "ThrottlingException" },
        { FaultKind.Malformed, "Encrypt", KmsErrorKind.RootKeyUnavailable, MaxAttempts, "could not be read" },
        { FaultKind.AccessDenied, "Encrypt", KmsErrorKind.RootKeyDenied, 1, "AccessDeniedException" },
        { FaultKind.Disabled, "Encrypt", KmsErrorKind.RootKeyDenied, 1, "DisabledException" },
        { FaultKind.NotFound, "Encrypt", KmsErrorKind.RootKeyDenied, 1, "NotFoundException" },
        { FaultKind.InvalidState, "Encrypt", KmsErrorKind.RootKeyDenied, 1, "KMSInvalidStateException" },
        { FaultKind.InternalError, "Decrypt", KmsErrorKind.RootKeyUnavailable, MaxAttempts, "KMSInternalException" },
        { FaultKind.Throttling, "Decrypt", KmsErrorKind.Throttled, MaxAttempts, "ThrottlingException" },
        { FaultKind.AccessDenied, "Decrypt", KmsErrorKind.RootKeyDenied, 1, "AccessDeniedException" },
        { FaultKind.TamperCiphertext, "Decrypt", KmsErrorKind.Corruption, 1, "InvalidCiphertextException" },
    };

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task Each_injected_fault_is_classified_and_retried_only_when_a_retry_can_help(FaultKind fault, string operation, KmsErrorKind expected,
        int attempts, string named)
    {
        using var root = await AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, _key.Arn), CancellationToken.None);
        var wrapped = await root.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), CancellationToken.None);
        var before = _kms.Calls(operation);
        _kms.Fault = new FakeFault(fault, operation);

        var error = await Assert.ThrowsAsync<KmsPluginException>(async () =>
        {
            if (operation == "Encrypt")
            {
                await root.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), CancellationToken.None);
            }
            else
            {
                using var _ = await root.UnwrapAsync(wrapped, AwsTestOptions.Aad(), CancellationToken.None);
            }
        });

        Assert.Equal(expected, error.Kind);
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
        Assert.Contains("'aws-test'", error.Message, StringComparison.Ordinal);
        Assert.Equal(attempts, _kms.Calls(operation) - before);
    }

    [Fact]
    public async Task A_transient_failure_is_retried_and_the_call_succeeds()
    {
        using var root = await AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, _key.Arn), CancellationToken.None);
        _kms.Fault = new FakeFault(FaultKind.InternalError, "Encrypt", times: 1);

        var wrapped = await root.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), CancellationToken.None);

        Assert.NotEmpty(wrapped);
        Assert.Equal(2, _kms.Calls("Encrypt"));
    }

    [Fact]
    public async Task A_KMS_slower_than_the_request_timeout_is_unavailable_after_bounded_attempts()
    {
        // A request timeout long enough for every attempt to reach the fake even on a loaded CI machine (at 200 ms an
        // attempt could time out while still connecting, and the fake would count one call less).
        var options = AwsTestOptions.For(_kms, _key.Arn) with { RequestTimeout = TimeSpan.FromSeconds(1) };
        using var root = await AwsKmsRootKey.OpenAsync(options, CancellationToken.None);
        _kms.Fault = new FakeFault(FaultKind.None, "Encrypt", latency: TimeSpan.FromSeconds(30));
        var attempts = new System.Collections.Concurrent.ConcurrentQueue<Exception?>();

        var error = await Assert.ThrowsAsync<KmsPluginException>(async () =>
        {
            RootKeyAttempts.ObserveInThisCall(attempts.Enqueue);
            await root.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), CancellationToken.None);
        });

        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
        Assert.Contains("timed out", error.Message, StringComparison.Ordinal);

        // The plugin's own attempts, counted where they are made, and the requests KMS saw: one per attempt.
        Assert.Equal(MaxAttempts, attempts.Count);
        Assert.All(attempts, a => Assert.Equal(KmsErrorKind.RootKeyUnavailable, Assert.IsType<KmsPluginException>(a).Kind));
        Assert.Equal(MaxAttempts, _kms.Calls("Encrypt"));
    }

    [Fact]
    public async Task The_callers_deadline_cancels_the_KMS_call_itself_and_is_not_retried()
    {
        using var root = await AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, _key.Arn), CancellationToken.None);
        _kms.Fault = new FakeFault(FaultKind.None, "Encrypt", latency: TimeSpan.FromSeconds(30));
        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => root.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), deadline.Token));

        Assert.Equal(1, _kms.Calls("Encrypt"));
        for (var i = 0; i < 100 && _kms.Aborted == 0; i++)
        {
            await Task.Delay(20); // the fake notices the abandoned request asynchronously
        }

        Assert.Equal(1, _kms.Aborted);
    }
}
