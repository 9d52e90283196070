using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.TestSupport;
using Microsoft.Extensions.Time.Testing;

namespace KmsPlugin.Vault.Tests;

/// <summary>
/// How the vault root key gets and keeps its token, against the fake's auth endpoints, on a fake clock shared by the
/// plugin and the fake (so leases expire when the test says): Kubernetes login, renewal at 2/3 of the lease, re-login
/// when renewal fails or the max TTL nears, one re-login after a 403, AppRole, token files, namespaces.
/// </summary>
public sealed class VaultAuthTests : IAsyncLifetime, IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.Parse("2030-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private FakeVault _vault = null!;

    public async Task InitializeAsync()
    {
        _vault = await FakeVault.StartAsync(_clock);
        _vault.CreateKey();
    }

    public async Task DisposeAsync() => await _vault.DisposeAsync();

    public void Dispose() => _dir.Dispose();

    private static async Task WrapOnceAsync(VaultTransitRootKey root) =>
        await root.WrapAsync(RandomNumberGenerator.GetBytes(32), VaultTestOptions.Aad(), CancellationToken.None);

    [Fact]
    public async Task Kubernetes_login_sends_the_role_and_the_JWT_from_the_file_and_the_token_serves_every_call()
    {
        using var root = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None);
        await WrapOnceAsync(root);
        await WrapOnceAsync(root);

        Assert.Equal(1, _vault.Calls("login"));
        Assert.Equal(["sa-jwt-generation-1"], _vault.LoginCredentialsSeen);
    }

    [Fact]
    public async Task The_token_is_renewed_at_two_thirds_of_its_lease_not_before()
    {
        using var root = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None);

        _clock.Advance(TimeSpan.FromMinutes(39));
        await WrapOnceAsync(root);
        Assert.Equal(0, _vault.Calls("renew"));

        _clock.Advance(TimeSpan.FromMinutes(2)); // 41 min into a 60 min lease
        await WaitForAsync(() => _vault.Calls("renew") == 1); // the renewal timer fires on the clock, without traffic
        await WrapOnceAsync(root);

        Assert.Equal(1, _vault.Calls("renew"));
        Assert.Equal(1, _vault.Calls("login"));
    }

    [Fact]
    public async Task When_renewal_fails_the_key_logs_in_again_reading_the_JWT_file_anew()
    {
        var options = VaultTestOptions.Kubernetes(_vault, _dir);
        using var root = await VaultTransitRootKey.OpenAsync(options, CancellationToken.None);
        _vault.RenewFails = true;
        await File.WriteAllTextAsync(options.Auth.TokenFile!, "sa-jwt-generation-2"); // the kubelet rotated the projected token
        _vault.AcceptedJwts["sa-jwt-generation-2"] = true;

        _clock.Advance(TimeSpan.FromMinutes(41));
        await WrapOnceAsync(root);

        Assert.True(_vault.Calls("renew") >= 1);
        Assert.Equal(2, _vault.Calls("login"));
        Assert.Equal("sa-jwt-generation-2", _vault.LoginCredentialsSeen.Last());
    }

    [Fact]
    public async Task When_the_max_TTL_nears_renewal_gives_way_to_a_fresh_login()
    {
        _vault.MaxTtl = TimeSpan.FromMinutes(70);
        using var root = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None);

        _clock.Advance(TimeSpan.FromMinutes(41));
        await WrapOnceAsync(root); // renewed: 29 min left before the max TTL, still more than a third of the login's lease
        Assert.Equal((1, 1), (_vault.Calls("renew"), _vault.Calls("login")));

        _clock.Advance(TimeSpan.FromMinutes(20));
        await WrapOnceAsync(root); // renewal grants only 9 min: log in again for a full lease

        Assert.Equal((2, 2), (_vault.Calls("renew"), _vault.Calls("login")));
    }

    [Fact]
    public async Task An_expired_token_is_replaced_by_a_login_on_the_next_use()
    {
        using var root = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None);
        await WaitForAsync(() => true);

        // Jump past the whole lease (a suspended VM): the timer's renewal finds the token expired and logs in.
        _clock.Advance(TimeSpan.FromHours(2));
        await WrapOnceAsync(root);

        Assert.Equal(0, _vault.Calls("renew"));
        Assert.Equal(2, _vault.Calls("login"));
    }

    [Fact]
    public async Task While_Vault_auth_is_failing_a_token_still_inside_its_lease_keeps_serving()
    {
        using var root = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None);
        _vault.RenewFails = true;
        _vault.AcceptedJwts.Clear(); // logins refused too

        _clock.Advance(TimeSpan.FromMinutes(45));
        await WrapOnceAsync(root);

        Assert.True(_vault.Calls("login") >= 2);
        Assert.Equal(1, _vault.Calls("encrypt"));
    }

    [Fact]
    public async Task A_revoked_token_is_replaced_by_one_login_and_the_call_succeeds()
    {
        using var root = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None);
        _vault.RevokeAll();

        await WrapOnceAsync(root);

        Assert.Equal(2, _vault.Calls("login"));
        Assert.Equal(2, _vault.Calls("encrypt"));
    }

    [Fact]
    public async Task A_policy_that_denies_the_transit_path_costs_one_re_login_then_is_reported_as_denied()
    {
        using var root = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None);
        _vault.PolicyDenies = true;

        var first = await Assert.ThrowsAsync<KmsPluginException>(() => WrapOnceAsync(root));
        var second = await Assert.ThrowsAsync<KmsPluginException>(() => WrapOnceAsync(root));

        Assert.Equal(KmsErrorKind.RootKeyDenied, first.Kind);
        Assert.Equal(KmsErrorKind.RootKeyDenied, second.Kind);
        Assert.Contains("permission denied", first.Message, StringComparison.Ordinal);
        Assert.Contains("policy", first.Message, StringComparison.Ordinal);

        // One re-login for the first 403; the token it gave is known to be denied, so the second call does not log in.
        Assert.Equal(2, _vault.Calls("login"));
        Assert.Equal(3, _vault.Calls("encrypt"));
    }

    [Fact]
    public async Task A_JWT_Vault_rejects_stops_the_key_from_opening_without_revealing_the_JWT()
    {
        var options = VaultTestOptions.Kubernetes(_vault, _dir);
        _vault.AcceptedJwts.Clear();

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => VaultTransitRootKey.OpenAsync(options, CancellationToken.None));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("login failed", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("sa-jwt-generation-1", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AppRole_logs_in_with_the_role_id_and_the_secret_id_read_from_its_file()
    {
        _vault.AcceptedSecretIds["secret-id-1"] = true;
        var options = VaultTestOptions.Kubernetes(_vault, _dir) with
        {
            Auth = new VaultAuthOptions
            {
                Method = VaultAuthMethod.AppRole,
                RoleId = FakeVault.AppRoleId,
                SecretIdFile = VaultTestOptions.PrivateFile(_dir, "secret-id", "secret-id-1\n"),
            },
        };

        using var root = await VaultTransitRootKey.OpenAsync(options, CancellationToken.None);
        await WrapOnceAsync(root);

        Assert.Equal(["secret-id-1"], _vault.LoginCredentialsSeen);
    }

    [Fact]
    public async Task An_AppRole_secret_id_file_readable_by_others_is_refused()
    {
        var secretIdFile = _dir.FilePath("secret-id");
        await File.WriteAllTextAsync(secretIdFile, "secret-id-1");
        File.SetUnixFileMode(secretIdFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        var options = VaultTestOptions.Kubernetes(_vault, _dir) with
        {
            Auth = new VaultAuthOptions { Method = VaultAuthMethod.AppRole, RoleId = FakeVault.AppRoleId, SecretIdFile = secretIdFile },
        };

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => VaultTransitRootKey.OpenAsync(options, CancellationToken.None));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("chmod", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, _vault.Calls("login"));
    }

    [Fact]
    public async Task A_token_file_is_read_again_when_it_changes()
    {
        var first = _vault.IssueStaticToken();
        var tokenFile = VaultTestOptions.PrivateFile(_dir, "vault-token", first);
        var options = VaultTestOptions.Kubernetes(_vault, _dir) with { Auth = new VaultAuthOptions { Method = VaultAuthMethod.Token, TokenFile = tokenFile } };
        using var root = await VaultTransitRootKey.OpenAsync(options, CancellationToken.None);
        await WrapOnceAsync(root);

        // Vault Agent writes a new token (and the old one is revoked); the next call must use the new one.
        _vault.RevokeAll();
        var second = _vault.IssueStaticToken();
        await File.WriteAllTextAsync(tokenFile, second + "\n");
        File.SetLastWriteTimeUtc(tokenFile, DateTime.UtcNow.AddSeconds(5));
        await WrapOnceAsync(root);

        Assert.Equal(0, _vault.Calls("login"));
        Assert.Equal(2, _vault.Calls("encrypt"));
    }

    [Fact]
    public async Task Every_request_carries_the_namespace_header()
    {
        _vault.Namespace = "team-a/k8s";
        using var root = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir) with { Namespace = "team-a/k8s" }, CancellationToken.None);
        var wrapped = await root.WrapAsync(RandomNumberGenerator.GetBytes(32), VaultTestOptions.Aad(), CancellationToken.None);
        using var _ = await root.UnwrapAsync(wrapped, VaultTestOptions.Aad(), CancellationToken.None);
        _clock.Advance(TimeSpan.FromMinutes(41));
        await WrapOnceAsync(root);

        Assert.Equal(1, _vault.Calls("renew"));
        Assert.All(_vault.NamespacesSeen, ns => Assert.Equal("team-a/k8s", ns));
        Assert.True(_vault.NamespacesSeen.Count >= 5); // login, keys, encrypt, decrypt, renew, encrypt
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
