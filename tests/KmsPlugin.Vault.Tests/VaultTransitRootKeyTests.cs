using System.Security.Cryptography;
using System.Text;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Vault.Tests;

/// <summary>The vault root key against the Transit fake: wrapping, binding, versions and identity.</summary>
public sealed class VaultTransitRootKeyTests : IAsyncLifetime, IDisposable
{
    private readonly TempDirectory _dir = new();
    private FakeVault _vault = null!;
    private FakeTransitKey _key = null!;

    public async Task InitializeAsync()
    {
        _vault = await FakeVault.StartAsync();
        _key = _vault.CreateKey();
    }

    public async Task DisposeAsync() => await _vault.DisposeAsync();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Wrap_then_unwrap_round_trips_with_explicit_key_version_and_the_associated_data_bound()
    {
        using var root = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None);
        var kek = RandomNumberGenerator.GetBytes(32);
        var aad = VaultTestOptions.Aad();

        var wrapped = await root.WrapAsync(kek, aad, CancellationToken.None);
        using var unwrapped = await root.UnwrapAsync(wrapped, aad, CancellationToken.None);

        Assert.Equal(kek, unwrapped.Span.ToArray());
        Assert.Equal(1, root.KeyVersion);
        Assert.StartsWith("vault:v1:", Encoding.ASCII.GetString(wrapped, 1, wrapped.Length - 1), StringComparison.Ordinal);
        var request = Assert.Single(_vault.EncryptRequests);
        Assert.Equal(1, (int)request["key_version"]!);
        Assert.Equal(Convert.ToBase64String(aad), (string)request["associated_data"]!);
    }

    [Fact]
    public async Task A_wrapped_KEK_presented_with_other_associated_data_fails_as_corruption_without_retries()
    {
        using var root = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None);
        var wrapped = await root.WrapAsync(RandomNumberGenerator.GetBytes(32), VaultTestOptions.Aad("key_id A"), CancellationToken.None);

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => root.UnwrapAsync(wrapped, VaultTestOptions.Aad("key_id B"), CancellationToken.None));

        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
        Assert.Contains("message authentication failed", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, _vault.Calls("decrypt"));
    }

    [Fact]
    public async Task A_tampered_blob_fails_as_corruption()
    {
        using var root = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None);
        var wrapped = await root.WrapAsync(RandomNumberGenerator.GetBytes(32), VaultTestOptions.Aad(), CancellationToken.None);
        wrapped[20] = wrapped[20] == (byte)'A' ? (byte)'B' : (byte)'A';

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => root.UnwrapAsync(wrapped, VaultTestOptions.Aad(), CancellationToken.None));

        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
    }

    [Fact]
    public async Task Key_id_names_address_mount_key_and_version()
    {
        var options = VaultTestOptions.Kubernetes(_vault, _dir);
        using var root = await VaultTransitRootKey.OpenAsync(options, CancellationToken.None);

        Assert.Equal(KeyIds.Derive("vault", VaultTransitRootKey.Identity(options, 1)), root.KeyId);
        var identities = new[]
        {
            VaultTransitRootKey.Identity(options, 1),
            VaultTransitRootKey.Identity(options, 2),
            VaultTransitRootKey.Identity(options with { Namespace = "team-a" }, 1),
            VaultTransitRootKey.Identity(options with { Mount = "transit-eu" }, 1),
            VaultTransitRootKey.Identity(options with { KeyName = "k8s-2" }, 1),
            VaultTransitRootKey.Identity(options with { Address = new Uri("https://vault.example.com:8200") }, 1),
        };
        Assert.Equal(identities.Length, identities.Distinct().Count());
        Assert.StartsWith("vault-", root.KeyId, StringComparison.Ordinal);
    }

    [Fact]
    public async Task After_a_Vault_key_rotation_a_reopened_key_has_a_new_key_id_and_unwraps_the_old_versions_blobs_under_their_key_id()
    {
        var options = VaultTestOptions.Kubernetes(_vault, _dir);
        using var before = await VaultTransitRootKey.OpenAsync(options, CancellationToken.None);
        var kek = RandomNumberGenerator.GetBytes(32);
        var wrapped = await before.WrapAsync(kek, VaultTestOptions.Aad(), CancellationToken.None);

        _key.Rotate();
        using var latest = await VaultTransitRootKey.OpenAsync(options, CancellationToken.None);
        using var pinned = await VaultTransitRootKey.OpenAsync(options with { KeyVersion = 1 }, CancellationToken.None);

        Assert.Equal(2, latest.KeyVersion);
        Assert.NotEqual(before.KeyId, latest.KeyId);
        Assert.Equal(before.KeyId, pinned.KeyId);
        using var old = await pinned.UnwrapAsync(wrapped, VaultTestOptions.Aad(), CancellationToken.None);
        Assert.Equal(kek, old.Span.ToArray());

        // The latest version's key takes the old blob under the key_id it was wrapped under (version 1's), never under its own.
        Assert.True(latest.Recognizes(before.KeyId, wrapped));
        Assert.False(latest.Recognizes(latest.KeyId, wrapped));
        using var viaLatest = await latest.UnwrapAsync(wrapped, VaultTestOptions.Aad(), CancellationToken.None);
        Assert.Equal(kek, viaLatest.Span.ToArray());

        var fresh = await latest.WrapAsync(kek, VaultTestOptions.Aad(), CancellationToken.None);
        Assert.StartsWith("vault:v2:", Encoding.ASCII.GetString(fresh, 1, fresh.Length - 1), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_type_without_associated_data_is_refused_at_open()
    {
        _vault.CreateKey("rsa", type: "rsa-2048");

        var error = await Assert.ThrowsAsync<KmsPluginException>(() =>
            VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir) with { KeyName = "rsa" }, CancellationToken.None));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("rsa-2048", error.Message, StringComparison.Ordinal);
        Assert.Contains("aes256-gcm96", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_derived_key_is_refused_at_open()
    {
        _vault.CreateKey("derived", derived: true);

        var error = await Assert.ThrowsAsync<KmsPluginException>(() =>
            VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir) with { KeyName = "derived" }, CancellationToken.None));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("derived", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_pinned_version_newer_than_the_latest_or_below_min_decryption_version_is_refused()
    {
        _key.Rotate();
        _key.MinDecryptionVersion = 2;
        var options = VaultTestOptions.Kubernetes(_vault, _dir);

        var tooNew = await Assert.ThrowsAsync<KmsPluginException>(() => VaultTransitRootKey.OpenAsync(options with { KeyVersion = 3 }, CancellationToken.None));
        var tooOld = await Assert.ThrowsAsync<KmsPluginException>(() => VaultTransitRootKey.OpenAsync(options with { KeyVersion = 1 }, CancellationToken.None));

        Assert.Contains("option keyVersion", tooNew.Message, StringComparison.Ordinal);
        Assert.Contains("min_decryption_version", tooOld.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_pinned_version_opens_while_Vault_is_down_but_the_latest_version_cannot_be_read()
    {
        var options = VaultTestOptions.Kubernetes(_vault, _dir);
        _vault.Fault = new FakeFault(FaultKind.ServiceUnavailable, "keys");

        using var pinned = await VaultTransitRootKey.OpenAsync(options with { KeyVersion = 1 }, CancellationToken.None);
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => VaultTransitRootKey.OpenAsync(options, CancellationToken.None));

        Assert.Equal(KeyIds.Derive("vault", VaultTransitRootKey.Identity(options, 1)), pinned.KeyId);
        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
        Assert.Contains("sealed", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plain_http_is_refused_except_to_loopback()
    {
        Assert.Null(VaultTransitRootKeyOptions.AddressProblem(new Uri("https://vault.example.com:8200")));
        Assert.Null(VaultTransitRootKeyOptions.AddressProblem(new Uri("http://127.0.0.1:8100")));
        Assert.NotNull(VaultTransitRootKeyOptions.AddressProblem(new Uri("http://vault.example.com:8200")));
        Assert.NotNull(VaultTransitRootKeyOptions.AddressProblem(new Uri("https://vault.example.com:8200/v1/transit")));
    }
}
