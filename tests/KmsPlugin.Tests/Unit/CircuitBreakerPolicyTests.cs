using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;
using Microsoft.Extensions.Time.Testing;

namespace KmsPlugin.Tests.Unit;

/// <summary>The breaker around a root key: what goes through it, what is forwarded, and which keys get one.</summary>
public sealed class CircuitBreakerPolicyTests
{
    private static readonly byte[] Aad = "aad"u8.ToArray();
    private static readonly CircuitBreakerOptions Options = new() { FailureThreshold = 2, OpenInterval = TimeSpan.FromSeconds(5) };
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public async Task Wrap_and_unwrap_pass_through_and_identity_is_forwarded()
    {
        var inner = new FakeRootKey("remote");
        var key = CircuitBreakerPolicy.Decorate(inner, Options, _time);
        Assert.IsType<CircuitBreakerPolicy>(Assert.IsType<PolicyRootKey>(key).Policy);
        Assert.Equal((inner.Name, inner.Provider, inner.KeyId), (key.Name, key.Provider, key.KeyId));

        var kek = RandomNumberGenerator.GetBytes(32);
        var wrapped = await key.WrapAsync(kek, Aad, CancellationToken.None);
        using var unwrapped = await key.UnwrapAsync(wrapped, Aad, CancellationToken.None);
        Assert.Equal(kek, unwrapped.Span.ToArray());
        Assert.Equal((1, 1), (inner.Wraps, inner.Unwraps));
    }

    [Fact]
    public async Task While_open_wrap_and_unwrap_fail_fast_without_reaching_the_key()
    {
        var inner = new FakeRootKey("remote") { Failure = new KmsPluginException(KmsErrorKind.RootKeyUnavailable, "connection refused") };
        var key = CircuitBreakerPolicy.Decorate(inner, Options, _time);
        await Assert.ThrowsAsync<KmsPluginException>(() => key.WrapAsync(new byte[32], Aad, CancellationToken.None));
        await Assert.ThrowsAsync<KmsPluginException>(() => key.UnwrapAsync(new byte[64], Aad, CancellationToken.None));
        var calls = inner.Wraps + inner.Unwraps;

        for (var i = 0; i < 20; i++)
        {
            var error = await Assert.ThrowsAsync<KmsPluginException>(() => key.UnwrapAsync(new byte[64], Aad, CancellationToken.None));
            Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
            Assert.StartsWith("root key 'remote' circuit open after 2 consecutive failures (last: connection refused)", error.Message, StringComparison.Ordinal);
            await Assert.ThrowsAsync<KmsPluginException>(() => key.WrapAsync(new byte[32], Aad, CancellationToken.None));
        }

        Assert.Equal(calls, inner.Wraps + inner.Unwraps);

        inner.Failure = null;
        _time.Advance(Options.OpenInterval);
        var wrapped = await key.WrapAsync(new byte[32], Aad, CancellationToken.None); // the trial
        using var unwrapped = await key.UnwrapAsync(wrapped, Aad, CancellationToken.None);
        Assert.Equal(CircuitState.Closed, BreakerOf(key).State);
    }

    [Fact]
    public async Task A_garbage_blob_is_reported_as_corruption_and_never_opens_the_circuit()
    {
        var inner = new FakeRootKey("remote");
        var key = CircuitBreakerPolicy.Decorate(inner, Options, _time);
        for (var i = 0; i < 50; i++)
        {
            var error = await Assert.ThrowsAsync<KmsPluginException>(() => key.UnwrapAsync(RandomNumberGenerator.GetBytes(60), Aad, CancellationToken.None));
            Assert.Equal(KmsErrorKind.Corruption, error.Kind);
        }

        Assert.Equal(CircuitState.Closed, BreakerOf(key).State);
        Assert.Equal(50, inner.Unwraps);
    }

    [Fact]
    public void Local_keys_and_a_disabled_breaker_leave_the_key_as_it_is()
    {
        using var dir = new TempDirectory();
        using var local = LocalRootKey.Open("dev", dir.FilePath("root.key"), create: true);
        Assert.Same(local, CircuitBreakerPolicy.Decorate(local, Options, _time));
        var remote = new FakeRootKey("remote");
        Assert.Same(remote, CircuitBreakerPolicy.Decorate(remote, null, _time));
    }

    [Fact]
    public async Task A_versioned_key_stays_versioned_forwards_recognizes_and_shares_its_breaker_with_its_next_version()
    {
        var backend = new FakeVersionedBackend();
        var inner = new FakeVersionedRootKey(backend, "transit", "1");
        var key = Assert.IsType<PolicyVersionedRootKey>(CircuitBreakerPolicy.Decorate(inner, Options, _time));
        Assert.True(key.FollowsLatestVersion);
        Assert.Equal("1", key.CurrentVersion);

        // Recognizes is the provider's own (version in the blob), not the interface default (own key_id only).
        var wrappedByV1 = await key.WrapAsync(new byte[32], Aad, CancellationToken.None);
        var v2 = Assert.IsType<PolicyVersionedRootKey>(key.WithVersion("2"));
        Assert.Same(BreakerOf(key), BreakerOf(v2));
        Assert.True(((IRootKey)v2).Recognizes(inner.KeyIdFor("1"), wrappedByV1));
        Assert.NotEqual(key.KeyId, v2.KeyId);

        // Version lookups fail fast while open, and a lookup that succeeds does not prove wraps work again.
        backend.ReadFailure = new KmsPluginException(KmsErrorKind.RootKeyUnavailable, "metadata API down");
        await Assert.ThrowsAsync<KmsPluginException>(() => key.ReadLatestVersionAsync(CancellationToken.None));
        await Assert.ThrowsAsync<KmsPluginException>(() => v2.ReadLatestVersionAsync(CancellationToken.None));
        Assert.Equal(CircuitState.Open, BreakerOf(key).State);
        var reads = backend.VersionReads;
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => v2.ReadLatestVersionAsync(CancellationToken.None));
        Assert.Contains("circuit open", error.Message, StringComparison.Ordinal);
        Assert.Equal(reads, backend.VersionReads);

        backend.ReadFailure = null;
        _time.Advance(Options.OpenInterval);
        Assert.Equal("1", await key.ReadLatestVersionAsync(CancellationToken.None));
        Assert.NotEqual(CircuitState.Closed, BreakerOf(key).State);
        using var unwrapped = await v2.UnwrapAsync(wrappedByV1, Aad, CancellationToken.None);
        Assert.Equal(CircuitState.Closed, BreakerOf(key).State);
    }

    [Fact]
    public void Dispose_reaches_the_inner_key()
    {
        var inner = new FakeVersionedRootKey(new FakeVersionedBackend(), "transit", "1");
        CircuitBreakerPolicy.Decorate(inner, Options, _time).Dispose();
        Assert.True(inner.Disposed);
    }

    /// <summary>The breaker a decorated key's calls go through.</summary>
    private static CircuitBreaker BreakerOf(IRootKey key) => Assert.IsType<CircuitBreakerPolicy>(Assert.IsAssignableFrom<PolicyRootKey>(key).Policy).Breaker;
}
