using System.Security.Cryptography;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.Hosting;
using KmsPlugin.TestSupport;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace KmsPlugin.Tests.Unit;

/// <summary>A remotely moved key version is followed after N stable probes, never flip-flopping (issue 4).</summary>
public sealed class VersionFollowerTests : IDisposable
{
    private readonly FakeVersionedBackend _backend = new();
    private readonly FakeTimeProvider _time = new();
    private readonly ActiveRootKeys _keys;
    private readonly RootKeyVersionFollower _follower;
    private readonly EnvelopeService _envelope;

    public VersionFollowerTests()
    {
        var builder = new RootKeyRingBuilder(_ => throw new InvalidOperationException("not opened here"), key => key, KeyIdHistory.InMemory());
        var first = new FakeVersionedRootKey(_backend, "transit", "1");
        _keys = new ActiveRootKeys(new RootKeyRing([new RootKeyEntry(first, RootKeyRole.Primary, "fp", first)], null), _time, TimeSpan.FromSeconds(30));
        _follower = new RootKeyVersionFollower(_keys, builder, TimeSpan.FromSeconds(5), NullLogger<RootKeyVersionFollower>.Instance) { StableProbes = 3 };
        _envelope = new EnvelopeService(_keys, new EnvelopeOptions(), _time, CsprngRandomSource.Instance, NullLogger.Instance);
    }

    private FakeVersionedRootKey Primary => (FakeVersionedRootKey)_keys.Current.Primary;

    private async Task ProbesAsync(int count)
    {
        for (var i = 0; i < count; i++)
        {
            await _follower.ObserveAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_new_remote_version_is_adopted_only_after_the_configured_number_of_stable_probes()
    {
        var before = await _envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        _backend.LatestVersion = "2";
        await ProbesAsync(2);
        Assert.Equal("1", Primary.CurrentVersion);
        Assert.Equal(before.KeyId, _envelope.CurrentKeyId);

        await ProbesAsync(1);
        Assert.Equal("2", Primary.CurrentVersion);
        Assert.NotEqual(before.KeyId, _envelope.CurrentKeyId);

        // Status and Encrypt agree immediately; data from version 1 still decrypts through the version 2 key.
        var after = await _envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        Assert.Equal(_envelope.CurrentKeyId, after.KeyId);
        using var fresh = new EnvelopeService(_keys, new EnvelopeOptions(), _time, CsprngRandomSource.Instance, NullLogger.Instance);
        await fresh.DecryptAsync(before.Ciphertext, before.KeyId, [.. before.Annotations.Select(a => new KeyValuePair<string, ReadOnlyMemory<byte>>(a.Key, a.Value))], CancellationToken.None);
    }

    [Fact]
    public async Task A_version_that_flickers_is_never_adopted()
    {
        for (var i = 0; i < 10; i++)
        {
            _backend.LatestVersion = i % 3 == 2 ? "1" : "2"; // seen twice, then gone again
            await ProbesAsync(1);
        }

        Assert.Equal("1", Primary.CurrentVersion);
    }

    [Fact]
    public async Task The_follower_never_goes_back_to_a_version_it_left()
    {
        _backend.LatestVersion = "2";
        await ProbesAsync(3);
        var adopted = _envelope.CurrentKeyId;
        _backend.LatestVersion = "1"; // a rollback remotely
        await ProbesAsync(10);
        Assert.Equal("2", Primary.CurrentVersion);
        Assert.Equal(adopted, _envelope.CurrentKeyId);
    }

    [Fact]
    public async Task An_unreadable_version_neither_confirms_nor_resets_a_candidate()
    {
        _backend.LatestVersion = "2";
        await ProbesAsync(2);
        _backend.ReadFailure = new KmsPluginException(KmsErrorKind.Throttled, "slow down");
        await ProbesAsync(5);
        Assert.Equal("1", Primary.CurrentVersion);
        _backend.ReadFailure = null;
        await ProbesAsync(1);
        Assert.Equal("2", Primary.CurrentVersion);
    }

    [Fact]
    public async Task A_pinned_version_is_never_moved()
    {
        var pinned = new FakeVersionedRootKey(_backend, "pinned", "1", follows: false);
        await _keys.UpdateAsync((_, _) => Task.FromResult<RootKeyRing?>(new RootKeyRing([new RootKeyEntry(pinned, RootKeyRole.Primary, "p", pinned)], null)), CancellationToken.None);
        _backend.LatestVersion = "2";
        await ProbesAsync(5);
        Assert.Same(pinned, _keys.Current.Primary);
        Assert.Equal(0, _backend.VersionReads);
    }

    [Fact]
    public async Task The_replaced_version_is_disposed_only_after_the_grace_period()
    {
        var first = Primary;
        _backend.LatestVersion = "2";
        await ProbesAsync(3);
        Assert.False(first.Disposed);
        _time.Advance(TimeSpan.FromSeconds(31));
        for (var i = 0; i < 100 && !first.Disposed; i++)
        {
            await Task.Delay(10);
        }

        Assert.True(first.Disposed);
    }

    public void Dispose()
    {
        _envelope.Dispose();
        _keys.Dispose();
    }
}
