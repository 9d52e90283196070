using System.Security.Cryptography;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.TestSupport;
using Microsoft.Extensions.Logging.Abstractions;

namespace KmsPlugin.Tests.Unit;

/// <summary>
/// <c>envelope.mode: direct</c>: every seed wrapped and unwrapped by the root key itself (the comparison mode of the
/// restart-storm benchmark). Its ciphertext carries its own format version, so either mode reads the other's data.
/// </summary>
public sealed class DirectWrapModeTests : IDisposable
{
    private readonly FakeRootKey _primary = new("primary");
    private readonly FakeRootKey _secondary = new("secondary");

    private EnvelopeService Create(EnvelopeMode mode) =>
        new(new RootKeyRing([_primary, _secondary]), new EnvelopeOptions { Mode = mode }, TimeProvider.System, CsprngRandomSource.Instance,
            NullLogger.Instance);

    private static KeyValuePair<string, ReadOnlyMemory<byte>>[] Annotations(EncryptResult result) =>
        result.Annotations.Select(a => new KeyValuePair<string, ReadOnlyMemory<byte>>(a.Key, a.Value)).ToArray();

    private static Task<byte[]> Decrypt(EnvelopeService envelope, EncryptResult result) =>
        envelope.DecryptAsync(result.Ciphertext, result.KeyId, Annotations(result), CancellationToken.None);

    [Fact]
    public async Task Direct_mode_wraps_the_seed_with_the_primary_root_key_in_format_version_2_without_annotations()
    {
        using var envelope = Create(EnvelopeMode.Direct);
        var seed = RandomNumberGenerator.GetBytes(32);
        var result = await envelope.EncryptAsync(seed, CancellationToken.None);

        Assert.Equal(DirectSeedFormat.Version2, result.Ciphertext[0]);
        Assert.Empty(result.Annotations);
        Assert.Equal(_primary.KeyId, result.KeyId);
        Assert.Equal(1, _primary.Wraps);
        Assert.Equal(seed, await Decrypt(envelope, result));
        Assert.Equal(1, _primary.Unwraps);
        Assert.Equal(0, envelope.Rotations);
    }

    [Fact]
    public async Task Direct_mode_calls_the_root_key_for_every_encrypt_and_every_decrypt()
    {
        using var envelope = Create(EnvelopeMode.Direct);
        var results = new List<EncryptResult>();
        for (var i = 0; i < 5; i++)
        {
            results.Add(await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None));
        }

        foreach (var result in results)
        {
            await Decrypt(envelope, result);
            await Decrypt(envelope, result);
        }

        Assert.Equal(5, _primary.Wraps);
        Assert.Equal(10, _primary.Unwraps);
        Assert.Equal(5, results.Select(r => Convert.ToHexString(r.Ciphertext)).Distinct().Count());
    }

    [Fact]
    public async Task Direct_mode_prepares_no_KEK()
    {
        using var envelope = Create(EnvelopeMode.Direct);
        await envelope.PrepareAsync(CancellationToken.None);
        Assert.Equal(0, _primary.Wraps);
    }

    [Fact]
    public async Task Direct_ciphertexts_decrypt_in_KEK_mode_and_KEK_ciphertexts_decrypt_in_direct_mode()
    {
        var seed = RandomNumberGenerator.GetBytes(32);
        EncryptResult direct;
        EncryptResult sealedByKek;
        using (var directWriter = Create(EnvelopeMode.Direct))
        {
            direct = await directWriter.EncryptAsync(seed, CancellationToken.None);
        }

        using (var kekWriter = Create(EnvelopeMode.Kek))
        {
            sealedByKek = await kekWriter.EncryptAsync(seed, CancellationToken.None);
        }

        using var kekReader = Create(EnvelopeMode.Kek);
        using var directReader = Create(EnvelopeMode.Direct);
        Assert.Equal(seed, await Decrypt(kekReader, direct));
        Assert.Equal(seed, await Decrypt(directReader, sealedByKek));
        Assert.Equal(seed, await Decrypt(directReader, direct));
    }

    [Fact]
    public async Task A_direct_ciphertext_under_the_key_id_of_another_configured_root_key_fails_authentication()
    {
        using var envelope = Create(EnvelopeMode.Direct);
        var result = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        var error = await Assert.ThrowsAsync<KmsPluginException>(() =>
            envelope.DecryptAsync(result.Ciphertext, _secondary.KeyId, [], CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
    }

    [Fact]
    public async Task A_direct_ciphertext_with_an_unknown_key_id_is_refused_before_any_root_key_call()
    {
        using var envelope = Create(EnvelopeMode.Direct);
        var result = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        var error = await Assert.ThrowsAsync<KmsPluginException>(() =>
            envelope.DecryptAsync(result.Ciphertext, KeyIds.Derive("fake", "elsewhere"), [], CancellationToken.None));
        Assert.Equal(KmsErrorKind.UnknownKeyId, error.Kind);
        Assert.Equal(0, _primary.Unwraps + _secondary.Unwraps);
    }

    [Fact]
    public async Task A_tampered_direct_ciphertext_fails_authentication()
    {
        using var envelope = Create(EnvelopeMode.Direct);
        var result = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        var tampered = result.Ciphertext.ToArray();
        tampered[^1] ^= 0x01;
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => envelope.DecryptAsync(tampered, result.KeyId, [], CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
    }

    [Fact]
    public async Task A_direct_ciphertext_with_an_annotation_is_refused_before_any_root_key_call()
    {
        using var envelope = Create(EnvelopeMode.Direct);
        var result = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => envelope.DecryptAsync(result.Ciphertext, result.KeyId,
            [new(WrappedKekAnnotation.Key, new byte[] { 1, 2, 3 })], CancellationToken.None));
        Assert.Equal(KmsErrorKind.InvalidRequest, error.Kind);
        Assert.Contains("comes with none", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, _primary.Unwraps);
    }

    [Fact]
    public async Task A_direct_ciphertext_relabelled_as_KEK_sealed_is_refused()
    {
        using var envelope = Create(EnvelopeMode.Direct);
        var result = await envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None);
        var relabelled = result.Ciphertext.ToArray();
        relabelled[0] = SealedSeedFormat.Version1;
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => envelope.DecryptAsync(relabelled, result.KeyId, [], CancellationToken.None));
        Assert.Equal(KmsErrorKind.InvalidRequest, error.Kind);
        Assert.Equal(0, _primary.Unwraps);
    }

    [Fact]
    public async Task A_direct_ciphertext_holding_nothing_is_invalid()
    {
        using var envelope = Create(EnvelopeMode.Kek);
        var error = await Assert.ThrowsAsync<KmsPluginException>(() =>
            envelope.DecryptAsync(new[] { DirectSeedFormat.Version2 }, _primary.KeyId, [], CancellationToken.None));
        Assert.Equal(KmsErrorKind.InvalidRequest, error.Kind);
    }

    [Fact]
    public async Task A_root_key_outage_fails_direct_encrypts_as_unavailable()
    {
        using var envelope = Create(EnvelopeMode.Direct);
        _primary.Failure = new KmsPluginException(KmsErrorKind.RootKeyUnavailable, "fake outage");
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None));
        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
    }

    [Fact]
    public void The_envelope_mode_defaults_to_kek_and_parses_direct()
    {
        const string rootKeys = "rootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]";
        Assert.Equal(EnvelopeMode.Kek, ConfigLoader.Parse("listen: unix:///run/k.sock\n" + rootKeys, "/").EnvelopeMode);
        Assert.Equal(EnvelopeMode.Kek, ConfigLoader.Parse("listen: unix:///run/k.sock\nenvelope: { mode: kek }\n" + rootKeys, "/").EnvelopeMode);
        Assert.Equal(EnvelopeMode.Direct, ConfigLoader.Parse("listen: unix:///run/k.sock\nenvelope: { mode: direct }\n" + rootKeys, "/").EnvelopeMode);
    }

    [Theory]
    [InlineData("envelope: { mode: fast }", "envelope.mode")]
    [InlineData("envelope: { cache: 1 }", "envelope.cache")]
    public void A_bad_envelope_block_names_the_field(string envelope, string field)
    {
        var yaml = $"listen: unix:///run/k.sock\n{envelope}\nrootKeys: [{{ name: dev, provider: local, local: {{ keyFile: /k }} }}]";
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, "/"));
        Assert.Contains(field, error.Message, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        _primary.Dispose();
        _secondary.Dispose();
    }
}
