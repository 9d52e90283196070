using System.Security.Cryptography;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.TestSupport;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace KmsPlugin.Tests.Unit;

public sealed class EnvelopeServiceTests : IDisposable
{
    private readonly FakeRootKey _primary = new("primary");
    private readonly FakeRootKey _secondary = new("secondary");
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-11-28T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    private EnvelopeService Create(EnvelopeOptions? options = null, params IRootKey[] keys) =>
        new(new RootKeyRing(keys.Length == 0 ? [_primary, _secondary] : keys), options ?? new EnvelopeOptions(), _time, CsprngRandomSource.Instance,
            NullLogger.Instance);

    private static KeyValuePair<string, ReadOnlyMemory<byte>>[] Annotations(EncryptResult result) =>
        result.Annotations.Select(a => new KeyValuePair<string, ReadOnlyMemory<byte>>(a.Key, a.Value)).ToArray();

    private static Task<byte[]> Decrypt(EnvelopeService envelope, EncryptResult result) =>
        envelope.DecryptAsync(result.Ciphertext, result.KeyId, Annotations(result), CancellationToken.None);

    [Fact]
    public async Task A_seed_round_trips_and_the_key_id_is_the_primary_root_keys()
    {
        using var envelope = Create();
        var seed = RandomNumberGenerator.GetBytes(32);
        var result = await envelope.EncryptAsync(seed, CancellationToken.None);
        Assert.Equal(_primary.KeyId, result.KeyId);
        Assert.Equal(envelope.CurrentKeyId, result.KeyId);
        Assert.Equal(SealedSeedFormat.Overhead + 32, result.Ciphertext.Length);
        Assert.Equal(seed, await Decrypt(envelope, result));
    }

    [Fact]
    public async Task Equal_seeds_give_distinct_ciphertexts()
    {
        using var envelope = Create();
        var seed = RandomNumberGenerator.GetBytes(32);
        var first = await envelope.EncryptAsync(seed, CancellationToken.None);
        var second = await envelope.EncryptAsync(seed, CancellationToken.None);
        Assert.NotEqual(first.Ciphertext, second.Ciphertext);
    }

    [Fact]
    public async Task The_hot_path_makes_no_root_key_call_after_the_first_KEK()
    {
        using var envelope = Create();
        var first = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        for (var i = 0; i < 100; i++)
        {
            var result = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
            await Decrypt(envelope, result);
        }

        await Decrypt(envelope, first);
        Assert.Equal(1, _primary.Wraps);
        Assert.Equal(0, _primary.Unwraps);
    }

    [Fact]
    public async Task The_KEK_rotates_after_max_uses_and_old_KEKs_still_decrypt_under_the_same_key_id()
    {
        using var envelope = Create(new EnvelopeOptions { MaxUses = 3 });
        var results = new List<EncryptResult>();
        for (var i = 0; i < 7; i++)
        {
            results.Add(await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None));
        }

        var keks = results.Select(r => Convert.ToHexString(r.Annotations[0].Value)).ToList();
        Assert.Equal(3, keks.Distinct().Count()); // uses 1-3, 4-6, 7
        Assert.Equal(keks[0], keks[2]);
        Assert.NotEqual(keks[2], keks[3]);
        Assert.All(results, r => Assert.Equal(_primary.KeyId, r.KeyId));
        Assert.Equal(3, envelope.Rotations);
        foreach (var result in results)
        {
            Assert.Equal(32, (await Decrypt(envelope, result)).Length);
        }
    }

    [Fact]
    public async Task The_KEK_rotates_after_max_age_without_changing_the_key_id()
    {
        using var envelope = Create(new EnvelopeOptions { MaxAge = TimeSpan.FromHours(1) });
        var before = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        _time.Advance(TimeSpan.FromMinutes(59));
        var stillSame = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        _time.Advance(TimeSpan.FromMinutes(1));
        var after = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);

        Assert.Equal(before.Annotations[0].Value, stillSame.Annotations[0].Value);
        Assert.NotEqual(before.Annotations[0].Value, after.Annotations[0].Value);
        Assert.Equal(before.KeyId, after.KeyId);
        Assert.Equal(2, _primary.Wraps);
        Assert.Equal(32, (await Decrypt(envelope, before)).Length);
    }

    [Fact]
    public async Task A_new_primary_swapped_in_rotates_the_KEK_and_the_key_id_at_once()
    {
        using var keys = new ActiveRootKeys(new RootKeyRing([_primary, _secondary]), _time);
        using var envelope = new EnvelopeService(keys, new EnvelopeOptions(), _time, CsprngRandomSource.Instance, NullLogger.Instance);
        var before = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        using var version2 = new FakeRootKey("primary", KeyIds.Derive("fake", "primary-version-2"));
        await keys.UpdateAsync((_, _) => Task.FromResult<RootKeyRing?>(new RootKeyRing([version2, _primary, _secondary])), CancellationToken.None);
        Assert.Equal(version2.KeyId, envelope.CurrentKeyId);
        var after = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        Assert.Equal(_primary.KeyId, before.KeyId);
        Assert.Equal(version2.KeyId, after.KeyId);
        Assert.NotEqual(before.Annotations[0].Value, after.Annotations[0].Value);
        Assert.Equal(32, (await Decrypt(envelope, before)).Length);
    }

    [Fact]
    public async Task Decrypt_of_an_uncached_KEK_unwraps_once_then_hits_the_cache()
    {
        var seed = RandomNumberGenerator.GetBytes(32);
        EncryptResult result;
        using (var writer = Create())
        {
            result = await writer.EncryptAsync(seed, CancellationToken.None);
        }

        using var reader = Create(); // another process or node: same root keys, empty cache
        Assert.Equal(seed, await Decrypt(reader, result));
        Assert.Equal(seed, await Decrypt(reader, result));
        Assert.Equal(1, _primary.Unwraps);
        Assert.Equal(1, reader.CacheStatistics.Hits);
    }

    [Fact]
    public async Task A_hundred_concurrent_decrypts_under_one_uncached_KEK_cause_exactly_one_unwrap()
    {
        var results = new List<EncryptResult>();
        using (var writer = Create())
        {
            for (var i = 0; i < 100; i++)
            {
                results.Add(await writer.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None));
            }
        }

        Assert.Single(results.Select(r => Convert.ToHexString(r.Annotations[0].Value)).Distinct());
        _primary.Latency = TimeSpan.FromMilliseconds(200);
        using var reader = Create();
        using var start = new ManualResetEventSlim();
        var decrypts = results.Select(r => Task.Run(async () =>
        {
            start.Wait();
            return await Decrypt(reader, r);
        })).ToArray();
        start.Set();
        await Task.WhenAll(decrypts);
        Assert.Equal(1, _primary.Unwraps);
    }

    [Fact]
    public async Task Data_under_a_decrypt_only_root_key_still_decrypts()
    {
        EncryptResult old;
        using (var before = Create(null, _secondary, _primary))
        {
            old = await before.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        }

        using var after = Create(null, _primary, _secondary);
        Assert.Equal(_secondary.KeyId, old.KeyId);
        Assert.NotEqual(old.KeyId, after.CurrentKeyId);
        Assert.Equal(32, (await Decrypt(after, old)).Length);
    }

    [Fact]
    public async Task A_key_id_that_is_not_configured_is_refused_before_any_root_key_call()
    {
        using var envelope = Create();
        var result = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        using var other = Create(null, _secondary);
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => Decrypt(other, result));
        Assert.Equal(KmsErrorKind.UnknownKeyId, error.Kind);
        Assert.Contains(KeyIdHash.Of(result.KeyId), error.Message, StringComparison.Ordinal);
        Assert.Equal(0, _secondary.Unwraps);
    }

    [Fact]
    public async Task The_key_id_of_another_configured_root_key_fails_authentication()
    {
        using var writer = Create();
        var result = await writer.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        using var reader = Create();
        var error = await Assert.ThrowsAsync<KmsPluginException>(() =>
            reader.DecryptAsync(result.Ciphertext, _secondary.KeyId, Annotations(result), CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
    }

    [Fact]
    public async Task A_root_key_outage_fails_uncached_unwraps_but_cached_KEKs_keep_working()
    {
        using var envelope = Create();
        var cached = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        EncryptResult uncached;
        using (var other = Create())
        {
            _time.Advance(TimeSpan.FromDays(8));
            uncached = await other.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        }

        _primary.Failure = new KmsPluginException(KmsErrorKind.RootKeyUnavailable, "fake outage");
        Assert.Equal(32, (await Decrypt(envelope, cached)).Length);
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => Decrypt(envelope, uncached));
        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
    }

    [Fact]
    public async Task A_slow_root_key_is_cut_off_by_the_callers_deadline()
    {
        using var envelope = Create(new EnvelopeOptions { RootKeyTimeout = TimeSpan.FromSeconds(30) });
        _primary.Latency = TimeSpan.FromSeconds(60);
        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var started = DateTime.UtcNow;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), deadline.Token));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(30)); // well before the 60 s wrap would finish
    }

    [Fact]
    public async Task Empty_and_oversized_plaintexts_are_invalid()
    {
        using var envelope = Create();
        Assert.Equal(KmsErrorKind.InvalidRequest,
            (await Assert.ThrowsAsync<KmsPluginException>(() => envelope.EncryptAsync(Array.Empty<byte>(), CancellationToken.None))).Kind);
        Assert.Equal(KmsErrorKind.InvalidRequest,
            (await Assert.ThrowsAsync<KmsPluginException>(() => envelope.EncryptAsync(new byte[513], CancellationToken.None))).Kind);
        Assert.Equal(0, _primary.Wraps);
    }

    [Fact]
    public void The_same_root_key_listed_twice_is_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => new RootKeyRing([_primary, new FakeRootKey("again", _primary.KeyId)]));
        Assert.Contains("same key", error.Message, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        _primary.Dispose();
        _secondary.Dispose();
    }
}
