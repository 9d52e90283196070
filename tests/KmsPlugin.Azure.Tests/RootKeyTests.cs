using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Azure.Tests;

/// <summary>The azure root key itself against the fake vault: wrap formats, associated-data binding, versions, open checks.</summary>
public sealed class RootKeyTests
{
    private static readonly byte[] Aad = "k8s-kms-plugin/test-aad"u8.ToArray();

    [Fact]
    public async Task Wrap_and_unwrap_round_trip_with_RSA_OAEP_256_on_Key_Vault()
    {
        await using var bed = await AzureTestBed.StartAsync();
        var version = bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        using var key = await bed.OpenAsync();
        var kek = RandomNumberGenerator.GetBytes(32);

        var blob = await key.WrapAsync(kek, Aad, CancellationToken.None);
        using var unwrapped = await key.UnwrapAsync(blob, Aad, CancellationToken.None);

        Assert.Equal(kek, unwrapped.Span.ToArray());
        Assert.Equal(version, key.KeyVersion);
        Assert.Equal(3 + version.Length + 256, blob.Length); // header + one RSA-2048 block
        Assert.Equal(1, bed.Vault.Requests("wrapkey"));
        Assert.Equal(1, bed.Vault.Requests("unwrapkey"));
    }

    [Fact]
    public async Task Wrap_and_unwrap_round_trip_with_A256KW_on_Managed_HSM()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddAesVersion(AzureTestBed.KeyName);
        using var key = await bed.OpenAsync(bed.Options(algorithm: "A256KW") with { Scope = "https://managedhsm.azure.net/.default" });
        var kek = RandomNumberGenerator.GetBytes(32);

        var blob = await key.WrapAsync(kek, Aad, CancellationToken.None);
        using var unwrapped = await key.UnwrapAsync(blob, Aad, CancellationToken.None);

        Assert.Equal(kek, unwrapped.Span.ToArray());
        Assert.Equal(3 + key.KeyVersion.Length + 72, blob.Length); // AES-KW of digest(32) + KEK(32) adds one block
    }

    [Fact]
    public async Task Unwrap_with_other_associated_data_is_corruption()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        using var key = await bed.OpenAsync();
        var blob = await key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None);

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => key.UnwrapAsync(blob, "another key_id"u8.ToArray(), CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
        Assert.Contains("digest", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_blob_whose_header_names_another_version_does_not_unwrap()
    {
        await using var bed = await AzureTestBed.StartAsync();
        var v1 = bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        var v2 = bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        using var key = await bed.OpenAsync(bed.Options(version: v1));
        var blob = await key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None);

        // Point the header at v2 (same length): v2 cannot open v1's RSA block, and the digest covers the header anyway.
        var edited = blob.ToArray();
        System.Text.Encoding.ASCII.GetBytes(v2).CopyTo(edited, 3);
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => key.UnwrapAsync(edited, Aad, CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 0x01 })]
    [InlineData(new byte[] { 0x02, 0x01, 0x01, (byte)'a', 0x00 })]
    [InlineData(new byte[] { 0x01, 0x09, 0x01, (byte)'a', 0x00 })]
    [InlineData(new byte[] { 0x01, 0x01, 0x05, (byte)'a', 0x00 })]
    public async Task Malformed_blobs_are_corruption_without_a_vault_call(byte[] blob)
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        using var key = await bed.OpenAsync();

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => key.UnwrapAsync(blob, Aad, CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
        Assert.Equal(0, bed.Vault.Requests("unwrapkey"));
    }

    [Fact]
    public async Task A_versionless_key_follows_the_newest_version_at_open_and_old_blobs_unwrap_with_their_own_version()
    {
        await using var bed = await AzureTestBed.StartAsync();
        var v1 = bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        byte[] oldBlob;
        var kek = RandomNumberGenerator.GetBytes(32);
        string oldKeyId;
        using (var before = await bed.OpenAsync())
        {
            Assert.Equal(v1, before.KeyVersion);
            oldKeyId = before.KeyId;
            oldBlob = await before.WrapAsync(kek, Aad, CancellationToken.None);
        }

        var v2 = bed.Vault.AddRsaVersion(AzureTestBed.KeyName); // rotation in the vault
        using var after = await bed.OpenAsync();

        Assert.Equal(v2, after.KeyVersion);
        Assert.NotEqual(oldKeyId, after.KeyId);
        Assert.StartsWith("azure-", after.KeyId, StringComparison.Ordinal);
        using var unwrapped = await after.UnwrapAsync(oldBlob, Aad, CancellationToken.None);
        Assert.Equal(kek, unwrapped.Span.ToArray());
        var newBlob = await after.WrapAsync(kek, Aad, CancellationToken.None);
        Assert.Equal(v2, System.Text.Encoding.ASCII.GetString(newBlob, 3, v2.Length));
    }

    [Fact]
    public async Task The_key_id_names_the_vault_key_and_version_whether_the_version_is_pinned_or_resolved()
    {
        await using var bed = await AzureTestBed.StartAsync();
        var v1 = bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        using var resolved = await bed.OpenAsync();
        using var pinned = await bed.OpenAsync(bed.Options(version: v1));

        Assert.Equal(resolved.KeyId, pinned.KeyId);
        Assert.Equal($"{bed.Vault.VaultUrl}/keys/{AzureTestBed.KeyName}/{v1}", pinned.KeyIdentifier);
        Assert.Equal(KeyIds.Derive("azure", pinned.KeyIdentifier), pinned.KeyId);
        Assert.DoesNotContain(v1, pinned.KeyId, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_configured_api_version_is_sent_on_every_call()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        bed.Vault.ApiVersion = "7.5";
        using var key = await bed.OpenAsync(bed.Options() with { ApiVersion = "7.5" });
        using var _ = await key.UnwrapAsync(await key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None), Aad, CancellationToken.None);

        bed.Vault.ApiVersion = "7.4";
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None));
        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("BadParameter", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Opening_a_disabled_key_version_is_denied_naming_it()
    {
        await using var bed = await AzureTestBed.StartAsync();
        var v1 = bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        bed.Vault.SetEnabled(AzureTestBed.KeyName, v1, false);

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => bed.OpenAsync());
        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("disabled", error.Message, StringComparison.Ordinal);
        Assert.Contains(v1, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Opening_a_missing_key_is_denied_with_the_vault_error_code()
    {
        await using var bed = await AzureTestBed.StartAsync();

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => bed.OpenAsync());
        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("HTTP 404", error.Message, StringComparison.Ordinal);
        Assert.Contains("KeyNotFound", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, bed.Vault.Requests("get")); // not retried
    }

    [Fact]
    public async Task An_RSA_key_configured_for_A256KW_is_refused_at_open()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => bed.OpenAsync(bed.Options(algorithm: "A256KW")));
        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("cannot do A256KW", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_vault_whose_certificate_is_not_trusted_is_refused_with_a_caFile_hint()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => bed.OpenAsync(bed.Options() with { CaFile = null }));
        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("caFile", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plain_http_vault_urls_are_refused()
    {
        var options = new AzureKeyVaultRootKeyOptions
        {
            Name = "akv",
            VaultUri = new Uri("http://myvault.vault.azure.net"),
            KeyName = "kek",
            Credential = new AzureCredentialOptions(),
        };
        var error = Assert.Throws<KmsPluginException>(options.Validate);
        Assert.Contains("vaultUrl", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("https://myvault.vault.azure.net", "https://vault.azure.net/.default")]
    [InlineData("https://myhsm.managedhsm.azure.net", "https://managedhsm.azure.net/.default")]
    [InlineData("https://myvault.vault.azure.cn", "https://vault.azure.cn/.default")]
    [InlineData("https://myvault.vault.usgovcloudapi.net", "https://vault.usgovcloudapi.net/.default")]
    public void The_token_scope_is_derived_from_the_vault_host_for_every_cloud(string vault, string scope)
    {
        var options = new AzureKeyVaultRootKeyOptions { Name = "akv", VaultUri = new Uri(vault), KeyName = "kek", Credential = new AzureCredentialOptions() };
        Assert.Equal(scope, options.EffectiveScope);
    }
}
