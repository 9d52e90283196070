using System.Security.Cryptography;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.TestSupport;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace KmsPlugin.Tests.Unit;

/// <summary>Additional-wrap (escrow / second region) root keys in the envelope core (issue 4, "Several root keys at once").</summary>
public sealed class AdditionalWrapTests : IDisposable
{
    private readonly FakeRootKey _primary = new("primary");
    private readonly FakeRootKey _escrow = new("escrow");
    private readonly FakeRootKey _old = new("old");
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-11-28T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    private static RootKeyRing Ring(params (IRootKey Key, RootKeyRole Role)[] keys) =>
        new([.. keys.Select(k => new RootKeyEntry(k.Key, k.Role))], null);

    private EnvelopeService Create(ActiveRootKeys keys) =>
        new(keys, new EnvelopeOptions(), _time, CsprngRandomSource.Instance, NullLogger.Instance);

    private static KeyValuePair<string, ReadOnlyMemory<byte>>[] Annotations(EncryptResult result) =>
        [.. result.Annotations.Select(a => new KeyValuePair<string, ReadOnlyMemory<byte>>(a.Key, a.Value))];

    private static Task<byte[]> Decrypt(EnvelopeService envelope, EncryptResult result) =>
        envelope.DecryptAsync(result.Ciphertext, result.KeyId, Annotations(result), CancellationToken.None);

    [Fact]
    public async Task Every_new_KEK_is_wrapped_by_the_primary_and_each_additional_root_key()
    {
        using var keys = new ActiveRootKeys(Ring((_primary, RootKeyRole.Primary), (_escrow, RootKeyRole.AdditionalWrap)));
        using var envelope = Create(keys);
        var result = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);

        Assert.Equal(1, _primary.Wraps);
        Assert.Equal(1, _escrow.Wraps);
        var value = result.Annotations.Single().Value;
        Assert.True(WrappedKekAnnotation.IsMultiWrap(value));
        var wraps = WrappedKekAnnotation.Wraps(value);
        Assert.Equal([_primary.KeyId, _escrow.KeyId], wraps.Select(w => w.Key));
        Assert.Equal(_primary.KeyId, result.KeyId);
    }

    [Fact]
    public async Task Decrypt_falls_back_to_the_additional_wrap_when_the_primary_is_unreachable()
    {
        using var keys = new ActiveRootKeys(Ring((_primary, RootKeyRole.Primary), (_escrow, RootKeyRole.AdditionalWrap)));
        using var writer = Create(keys);
        var seed = RandomNumberGenerator.GetBytes(32);
        var result = await writer.EncryptAsync(seed, CancellationToken.None);

        // A second process (nothing cached) while the primary's region is down.
        using var reader = Create(keys);
        _primary.Failure = new KmsPluginException(KmsErrorKind.RootKeyUnavailable, "region down");
        Assert.Equal(seed, await Decrypt(reader, result));
        Assert.Equal(1, _primary.Unwraps);
        Assert.Equal(1, _escrow.Unwraps);
    }

    [Fact]
    public async Task Data_stays_readable_after_the_primary_is_removed_when_its_escrow_is_kept()
    {
        var seed = RandomNumberGenerator.GetBytes(32);
        EncryptResult result;
        using (var keys = new ActiveRootKeys(Ring((_primary, RootKeyRole.Primary), (_escrow, RootKeyRole.AdditionalWrap))))
        using (var writer = Create(keys))
        {
            result = await writer.EncryptAsync(seed, CancellationToken.None);
        }

        // The primary is gone from the configuration entirely (its provider was decommissioned).
        using var after = new ActiveRootKeys(Ring((_escrow, RootKeyRole.Primary)));
        using var reader = Create(after);
        Assert.Equal(seed, await Decrypt(reader, result));
        Assert.Equal(0, _primary.Unwraps);
    }

    [Fact]
    public async Task A_removed_root_key_without_another_wrap_is_refused_with_a_clear_error()
    {
        var seed = RandomNumberGenerator.GetBytes(32);
        using var keys = new ActiveRootKeys(Ring((_old, RootKeyRole.Primary)));
        using var envelope = Create(keys);
        var result = await envelope.EncryptAsync(seed, CancellationToken.None);
        Assert.Equal(seed, await Decrypt(envelope, result)); // cached now

        await keys.UpdateAsync((_, _) => Task.FromResult<RootKeyRing?>(Ring((_primary, RootKeyRole.Primary))), CancellationToken.None);
        var e = await Assert.ThrowsAsync<KmsPluginException>(() => Decrypt(envelope, result));
        Assert.Equal(KmsErrorKind.UnknownKeyId, e.Kind);
        Assert.Contains("decrypt-only", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_additional_root_key_does_not_fail_Encrypt_and_is_retried_on_a_later_KEK()
    {
        using var keys = new ActiveRootKeys(Ring((_primary, RootKeyRole.Primary), (_escrow, RootKeyRole.AdditionalWrap)));
        using var envelope = Create(keys);
        _escrow.Failure = new KmsPluginException(KmsErrorKind.RootKeyUnavailable, "escrow down");
        var first = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        Assert.False(WrappedKekAnnotation.IsMultiWrap(first.Annotations.Single().Value));
        Assert.True(envelope.CurrentKek!.Value.MissingWraps); // kms_plugin_kek_missing_wraps

        // Within the retry delay the same KEK keeps sealing; after it, a new KEK is made and gets the escrow wrap.
        _escrow.Failure = null;
        var same = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        Assert.Equal(first.Annotations.Single().Value, same.Annotations.Single().Value);
        _time.Advance(EnvelopeService.MissingWrapRetry);
        var retried = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        Assert.True(WrappedKekAnnotation.IsMultiWrap(retried.Annotations.Single().Value));
        Assert.False(envelope.CurrentKek!.Value.MissingWraps);
        Assert.Equal(first.KeyId, retried.KeyId);
    }

    [Fact]
    public async Task A_multi_wrap_annotation_moved_under_another_key_id_is_rejected()
    {
        using var keys = new ActiveRootKeys(Ring((_primary, RootKeyRole.Primary), (_escrow, RootKeyRole.AdditionalWrap)));
        using var envelope = Create(keys);
        var result = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        var e = await Assert.ThrowsAsync<KmsPluginException>(() =>
            envelope.DecryptAsync(result.Ciphertext, _escrow.KeyId, Annotations(result), CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, e.Kind);
    }

    [Fact]
    public void The_multi_wrap_format_round_trips_and_rejects_every_malformation()
    {
        byte[] w1 = [1, 2, 3], w2 = [4, 5];
        var value = WrappedKekAnnotation.EncodeMany([new("a-1", w1), new("b-2", w2)]);
        var wraps = WrappedKekAnnotation.Wraps(value);
        Assert.Equal(["a-1", "b-2"], wraps.Select(w => w.Key));
        Assert.Equal(w1, wraps[0].Value.ToArray());
        Assert.Equal(w2, wraps[1].Value.ToArray());

        // Every truncation and one trailing byte are refused.
        for (var length = 0; length < value.Length; length++)
        {
            Assert.Throws<KmsPluginException>(() => WrappedKekAnnotation.Wraps(value.AsMemory(0, length)));
        }

        Assert.Throws<KmsPluginException>(() => WrappedKekAnnotation.Wraps((byte[])[.. value, 0]));
        var oneWrap = (byte[])value.Clone();
        oneWrap[1] = 1;
        Assert.Throws<KmsPluginException>(() => WrappedKekAnnotation.Wraps(oneWrap));
        var controlChar = (byte[])value.Clone();
        controlChar[3] = 0x0a;
        Assert.Throws<KmsPluginException>(() => WrappedKekAnnotation.Wraps(controlChar));
        Assert.Throws<ArgumentOutOfRangeException>(() => WrappedKekAnnotation.EncodeMany([new("a", w1)]));
    }

    public void Dispose()
    {
        _primary.Dispose();
        _escrow.Dispose();
        _old.Dispose();
    }
}
