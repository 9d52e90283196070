using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Aws.Tests;

/// <summary>The aws root key through the real AWS SDK against the KMS fake: wrapping, binding, key resolution, identity.</summary>
public sealed class AwsKmsRootKeyTests : IAsyncLifetime
{
    private FakeAwsKms _kms = null!;

    public async Task InitializeAsync() => _kms = await FakeAwsKms.StartAsync();

    public async Task DisposeAsync() => await _kms.DisposeAsync();

    [Fact]
    public async Task Wrap_then_unwrap_round_trips_with_the_associated_data_bound_in_the_encryption_context()
    {
        var key = _kms.CreateKey();
        using var root = await AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, key.Arn), CancellationToken.None);
        var kek = RandomNumberGenerator.GetBytes(32);
        var aad = AwsTestOptions.Aad();

        var wrapped = await root.WrapAsync(kek, aad, CancellationToken.None);
        using var unwrapped = await root.UnwrapAsync(wrapped, aad, CancellationToken.None);

        Assert.Equal(kek, unwrapped.Span.ToArray());
        Assert.Equal(AwsWrappedBlob.KmsSymmetricV1, wrapped[0]);
        var calls = _kms.Requests.ToArray();
        Assert.Equal(["Encrypt", "Decrypt"], calls.Select(c => c.Operation));
        Assert.All(calls, c => Assert.Equal(Convert.ToBase64String(aad), c.Context[AwsEncryptionContext.AssociatedDataKey]));
        Assert.All(calls, c => Assert.Equal(key.Arn, c.KeyId)); // Decrypt names the key too
    }

    [Fact]
    public async Task A_wrapped_KEK_presented_with_other_associated_data_fails_as_corruption()
    {
        var key = _kms.CreateKey();
        using var root = await AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, key.Arn), CancellationToken.None);
        var wrapped = await root.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad("key_id A"), CancellationToken.None);

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => root.UnwrapAsync(wrapped, AwsTestOptions.Aad("key_id B"), CancellationToken.None));

        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
        Assert.Contains("InvalidCiphertextException", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tampered_blob_fails_as_corruption_without_retries()
    {
        var key = _kms.CreateKey();
        using var root = await AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, key.Arn), CancellationToken.None);
        var wrapped = await root.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), CancellationToken.None);
        wrapped[^3] ^= 0x40;

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => root.UnwrapAsync(wrapped, AwsTestOptions.Aad(), CancellationToken.None));

        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
        Assert.Equal(1, _kms.Calls("Decrypt"));
    }

    [Fact]
    public async Task A_blob_of_an_unknown_format_is_refused_before_any_KMS_call()
    {
        var key = _kms.CreateKey();
        using var root = await AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, key.Arn), CancellationToken.None);

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => root.UnwrapAsync(new byte[] { 0x02, 1, 2, 3 }, AwsTestOptions.Aad(), CancellationToken.None));

        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
        Assert.Equal(0, _kms.Calls("Decrypt"));
    }

    [Fact]
    public async Task A_blob_made_under_another_key_is_refused_because_Decrypt_names_the_configured_key()
    {
        var first = _kms.CreateKey();
        var second = _kms.CreateKey();
        using var rootA = await AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, first.Arn), CancellationToken.None);
        using var rootB = await AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, second.Arn), CancellationToken.None);
        var wrapped = await rootA.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), CancellationToken.None);

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => rootB.UnwrapAsync(wrapped, AwsTestOptions.Aad(), CancellationToken.None));

        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
        Assert.Contains("IncorrectKeyException", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_alias_is_resolved_once_at_open_and_the_ARN_names_the_key_id_and_every_call()
    {
        var key = _kms.CreateKey("alias/k8s-secrets");
        using var byAlias = await AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, "alias/k8s-secrets"), CancellationToken.None);
        using var byArn = await AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, key.Arn), CancellationToken.None);

        Assert.Equal(key.Arn, byAlias.KeyArn);
        Assert.Equal(byArn.KeyId, byAlias.KeyId);
        Assert.Equal(KeyIds.Derive("aws", "arn=" + key.Arn), byAlias.KeyId);
        Assert.DoesNotContain(key.Arn, byAlias.KeyId, StringComparison.Ordinal); // key_id is public: a hash, not the ARN

        // Re-pointing the alias later does not move an opened key: its key_id names one key for good.
        var other = _kms.CreateKey();
        _kms.PointAlias("alias/k8s-secrets", other);
        var describesBefore = _kms.Calls("DescribeKey");
        var wrapped = await byAlias.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), CancellationToken.None);
        using var _ = await byAlias.UnwrapAsync(wrapped, AwsTestOptions.Aad(), CancellationToken.None);
        Assert.Equal(describesBefore, _kms.Calls("DescribeKey"));
        Assert.All(_kms.Requests, r => Assert.Equal(key.Arn, r.KeyId));
    }

    [Fact]
    public async Task Key_id_stays_the_same_across_AWS_key_rotation_and_blobs_from_before_still_unwrap()
    {
        var key = _kms.CreateKey();
        using var before = await AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, key.Arn), CancellationToken.None);
        var kek = RandomNumberGenerator.GetBytes(32);
        var wrapped = await before.WrapAsync(kek, AwsTestOptions.Aad(), CancellationToken.None);

        key.Rotate();
        using var after = await AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, key.Arn), CancellationToken.None);
        var rewrapped = await after.WrapAsync(kek, AwsTestOptions.Aad(), CancellationToken.None);

        Assert.Equal(before.KeyId, after.KeyId);

        // Nothing for the version follower to do: the key is not versioned as far as the plugin can see, and its one
        // key_id recognises every wrap (the default Recognizes).
        Assert.IsNotAssignableFrom<IVersionedRootKey>(after);
        Assert.True(((IRootKey)after).Recognizes(before.KeyId, wrapped));
        Assert.False(((IRootKey)after).Recognizes(KeyIds.Derive("aws", "arn=" + key.Arn + "-other"), wrapped));
        using var old = await after.UnwrapAsync(wrapped, AwsTestOptions.Aad(), CancellationToken.None);
        using var fresh = await after.UnwrapAsync(rewrapped, AwsTestOptions.Aad(), CancellationToken.None);
        Assert.Equal(kek, old.Span.ToArray());
        Assert.Equal(kek, fresh.Span.ToArray());
    }

    [Fact]
    public async Task Extra_encryption_context_is_sent_on_every_call_and_changes_the_key_id()
    {
        var key = _kms.CreateKey();
        var plain = AwsTestOptions.For(_kms, key.Arn);
        var withContext = plain with { EncryptionContext = new Dictionary<string, string> { ["cluster"] = "prod-eu1" } };
        using var rootPlain = await AwsKmsRootKey.OpenAsync(plain, CancellationToken.None);
        using var rootContext = await AwsKmsRootKey.OpenAsync(withContext, CancellationToken.None);

        var wrapped = await rootContext.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), CancellationToken.None);
        using var _ = await rootContext.UnwrapAsync(wrapped, AwsTestOptions.Aad(), CancellationToken.None);

        Assert.NotEqual(rootPlain.KeyId, rootContext.KeyId);
        Assert.All(_kms.Requests, r => Assert.Equal("prod-eu1", r.Context["cluster"]));

        // A blob made with the extra context does not decrypt without it: it is a different key as far as data goes.
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => rootPlain.UnwrapAsync(wrapped, AwsTestOptions.Aad(), CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
    }

    [Fact]
    public async Task Requests_signed_with_unknown_credentials_are_denied()
    {
        var key = _kms.CreateKey();
        var options = AwsTestOptions.For(_kms, key.Arn) with
        {
            ExplicitCredentials = new Amazon.Runtime.BasicAWSCredentials(FakeAwsKms.StaticAccessKeyId, "not-the-secret"),
        };

        // Bad credentials are configuration: the key does not open (DescribeKey is refused), and nothing is retried.
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => AwsKmsRootKey.OpenAsync(options, CancellationToken.None));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("InvalidSignatureException", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, _kms.Calls("DescribeKey"));
        Assert.DoesNotContain("not-the-secret", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_asymmetric_key_is_refused_at_open_naming_its_key_spec()
    {
        var key = _kms.CreateKey("alias/signing", keySpec: "RSA_2048");

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, "alias/signing"), CancellationToken.None));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("RSA_2048", error.Message, StringComparison.Ordinal);
        Assert.Contains(key.Arn, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_alias_fails_at_open_as_denied()
    {
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, "alias/nope"), CancellationToken.None));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("NotFoundException", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_ARN_opens_while_KMS_is_down_but_an_alias_cannot_be_resolved()
    {
        var key = _kms.CreateKey("alias/k8s");
        _kms.Fault = new FakeFault(FaultKind.InternalError, "DescribeKey");

        using var byArn = await AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, key.Arn), CancellationToken.None);
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, "alias/k8s"), CancellationToken.None));

        Assert.Equal(KeyIds.Derive("aws", "arn=" + key.Arn), byArn.KeyId);
        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
        Assert.Equal(2 * AwsTestOptions.FastRetry.MaxAttempts, _kms.Calls("DescribeKey"));
    }

    [Fact]
    public async Task A_disabled_key_opens_so_a_decrypt_only_entry_cannot_block_start_up_and_its_calls_are_denied()
    {
        var key = _kms.CreateKey("alias/old");
        key.Enabled = false;

        using var root = await AwsKmsRootKey.OpenAsync(AwsTestOptions.For(_kms, "alias/old"), CancellationToken.None);
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => root.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), CancellationToken.None));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("DisabledException", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, _kms.Calls("Encrypt"));
    }
}
