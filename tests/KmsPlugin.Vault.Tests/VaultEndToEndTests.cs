using System.Security.Cryptography;
using Grpc.Core;
using KmsPlugin.Client;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.Security;
using KmsPlugin.TestSupport;
using Xunit.Abstractions;

namespace KmsPlugin.Vault.Tests;

/// <summary>
/// The plugin with a vault root key, configured from YAML (Kubernetes auth with a JWT file, the fake as Vault), through
/// its real Unix socket the way kube-apiserver talks to it.
/// </summary>
public sealed class VaultEndToEndTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private readonly TempDirectory _dir = new();
    private FakeVault _vault = null!;
    private FakeTransitKey _key = null!;

    public async Task InitializeAsync()
    {
        _vault = await FakeVault.StartAsync();
        _vault.Namespace = "platform";
        _key = _vault.CreateKey("k8s-secrets");
        _vault.AcceptedJwts["projected-sa-jwt"] = true;
        await File.WriteAllTextAsync(_dir.FilePath("sa-token"), "projected-sa-jwt");
    }

    public async Task DisposeAsync() => await _vault.DisposeAsync();

    public void Dispose() => _dir.Dispose();

    private static string Entry(string name, string address, int? keyVersion, string keyName = "k8s-secrets") => $"""
          - name: {name}
            provider: vault
            vault:
              address: {address}
              namespace: platform
              key: {keyName}
              {(keyVersion is null ? "" : $"keyVersion: {keyVersion}")}
              networkTimeout: 1s
              retryBaseDelay: 1ms
              retryMaxDelay: 5ms
              auth:
                method: kubernetes
                role: {FakeVault.KubernetesRole}
                tokenFile: sa-token
        """;

    /// <summary>The one versionless entry every test here uses, pointing at the fake.</summary>
    private string VaultProd(string keyName = "k8s-secrets") => Entry("vault-prod", _vault.Address.ToString().TrimEnd('/'), null, keyName);

    private PluginConfig Config(string keyName = "k8s-secrets", int? healthPort = null) =>
        PluginYaml.Parse(_dir, [VaultProd(keyName)], healthPort, "rootKeyTimeout: 3s");

    private async Task<PluginHost> StartAsync(string keyName = "k8s-secrets")
    {
        var plugin = await PluginHost.StartAsync(Config(keyName));
        await plugin.WaitForProbeAsync();
        return plugin;
    }

    [Fact]
    public async Task Status_encrypt_decrypt_over_the_socket_pass_the_apiservers_checks()
    {
        await using var plugin = await StartAsync();

        var status = await plugin.Apiserver.StatusAsync();
        var report = await plugin.Apiserver.ProbeAsync();

        Assert.True(report.Ok, string.Join('\n', report.Lines));
        Assert.Equal("ok", status.Healthz);
        Assert.StartsWith("vault-", status.KeyId, StringComparison.Ordinal);
        Assert.Null(ApiserverEmulator.CheckStatus(status));
        Assert.Equal(["projected-sa-jwt"], _vault.LoginCredentialsSeen);
        Assert.All(_vault.NamespacesSeen, ns => Assert.Equal("platform", ns));
    }

    [Fact]
    public async Task After_a_Vault_key_rotation_the_plugin_on_the_new_version_decrypts_old_data_with_a_single_root_key_entry()
    {
        var seeds = Enumerable.Range(0, 3).Select(_ => RandomNumberGenerator.GetBytes(32)).ToList();
        var stored = new List<Protocol.V2.EncryptResponse>();
        await using (var before = await StartAsync())
        {
            foreach (var seed in seeds)
            {
                stored.Add(await before.Apiserver.EncryptAsync(seed));
            }
        }

        _key.Rotate(); // vault write -f transit/keys/k8s-secrets/rotate

        // The same configuration (one versionless entry): a restarted plugin wraps with version 2, a new key_id (a running
        // one follows the rotation live: A_remote_rotation_is_followed_live_with_no_failed_call).
        await using var after = await StartAsync();
        var status = await after.Apiserver.StatusAsync();

        Assert.NotEqual(stored[0].KeyId, status.KeyId);
        Assert.Equal("ok", status.Healthz);
        var decryptsBefore = _vault.Calls("decrypt");
        for (var i = 0; i < seeds.Count; i++)
        {
            Assert.Equal(seeds[i], await after.Apiserver.DecryptAsync(stored[i]));
        }

        Assert.Equal(1, _vault.Calls("decrypt") - decryptsBefore); // one KEK of version 1, unwrapped once

        var fresh = await after.Apiserver.EncryptAsync(seeds[0]);
        Assert.Equal(status.KeyId, fresh.KeyId);
        Assert.Equal(2, (int)_vault.EncryptRequests.Last()["key_version"]!);
        Assert.Equal(seeds[0], await after.Apiserver.DecryptAsync(fresh));
    }

    [Fact]
    public async Task Data_of_another_Transit_key_is_refused_naming_its_key_id()
    {
        Protocol.V2.EncryptResponse stored;
        await using (var before = await StartAsync())
        {
            stored = await before.Apiserver.EncryptAsync(RandomNumberGenerator.GetBytes(32));
        }

        // Another key whose versions (1) look the same in a wrap: only the key_id tells them apart.
        _vault.CreateKey("k8s-secrets-2");
        await using var after = await StartAsync(keyName: "k8s-secrets-2");
        var decrypts = _vault.Calls("decrypt");
        var error = await Assert.ThrowsAsync<RpcException>(() => after.Apiserver.DecryptAsync(stored));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains(KeyIdHash.Of(stored.KeyId), error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(decrypts, _vault.Calls("decrypt"));
    }

    [Fact]
    public async Task A_remote_rotation_is_followed_live_with_no_failed_call()
    {
        var versionBefore = _key.Versions.Count;
        var versionAfter = versionBefore + 1;
        await RemoteVersionFollowingScenario.RunAsync(_dir, VaultProd(), new RemoteKeyVersions
        {
            Provider = "vault",
            Rotate = _key.Rotate, // vault write -f transit/keys/k8s-secrets/rotate
            RollBack = () => _key.ReportedLatestVersion = versionBefore, // a standby or replica still before the rotation
            WrapsWithNewVersion = () => _vault.EncryptRequests.Count(r => (int?)r["key_version"] == versionAfter),
        }, output.WriteLine);
    }

    [Fact]
    public async Task Throttling_is_visible_in_metrics_by_provider_and_outcome()
    {
        await RemoteThrottlingScenario.RunAsync(port => Config(healthPort: port), new RemoteThrottling
        {
            Provider = "vault",
            Throttle = () => _vault.Fault = new FakeFault(FaultKind.Throttling, "decrypt"), // 429, rate limit quota exceeded
            Clear = () => _vault.Fault = null,
            UnwrapRequests = () => _vault.Calls("decrypt"),
        });
    }

    public static TheoryData<FaultKind, StatusCode, int, string> SocketFaults => new()
    {
        { FaultKind.InternalError, StatusCode.Unavailable, 3, "internal error" },
        { FaultKind.ServiceUnavailable, StatusCode.Unavailable, 3, "sealed" },
        { FaultKind.Throttling, StatusCode.ResourceExhausted, 3, "rate limit" },
        { FaultKind.AccessDenied, StatusCode.FailedPrecondition, 2, "permission denied" },
        { FaultKind.Disabled, StatusCode.FailedPrecondition, 1, "too old" },
        { FaultKind.TamperCiphertext, StatusCode.DataLoss, 1, "message authentication failed" },
    };

    [Theory]
    [MemberData(nameof(SocketFaults))]
    public async Task A_Vault_fault_gives_its_gRPC_code_and_healthz_reason_while_cached_KEK_traffic_keeps_working(FaultKind fault, StatusCode code,
        int attempts, string reason)
    {
        await using var s = await StoredCiphertextScenario.StartAsync(() => Config());
        var decryptsBefore = _vault.Calls("decrypt");
        _vault.Fault = new FakeFault(fault, "decrypt");

        var error = await Assert.ThrowsAsync<RpcException>(() => s.Plugin.Apiserver.DecryptAsync(s.Stored));
        Assert.Equal(code, error.StatusCode);
        Assert.Contains(reason, error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(attempts, _vault.Calls("decrypt") - decryptsBefore);

        await s.AssertCachedTrafficWorksAsync();
        var healthz = await s.ProbeHealthzAsync();
        Assert.Contains("vault-prod", healthz, StringComparison.Ordinal);
        Assert.Contains(reason, healthz, StringComparison.Ordinal);

        _vault.Fault = null;
        Assert.Equal(s.StoredSeed, await s.Plugin.Apiserver.DecryptAsync(s.Stored));
    }

    [Fact]
    public async Task A_Vault_slower_than_the_deadline_gives_DeadlineExceeded_and_the_plugin_keeps_serving()
    {
        var seed = RandomNumberGenerator.GetBytes(32);
        Protocol.V2.EncryptResponse stored;
        await using (var writer = await StartAsync())
        {
            stored = await writer.Apiserver.EncryptAsync(seed);
        }

        await using var plugin = await StartAsync();
        var own = await plugin.Apiserver.EncryptAsync(seed);
        _vault.Fault = new FakeFault(FaultKind.None, "decrypt", latency: TimeSpan.FromSeconds(30));
        var impatient = new ApiserverEmulator(plugin.Channel, TimeSpan.FromMilliseconds(300));

        var error = await Assert.ThrowsAsync<RpcException>(() => impatient.DecryptAsync(stored));

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.Equal("ok", (await plugin.Apiserver.StatusAsync()).Healthz);
        Assert.Equal(seed, await plugin.Apiserver.DecryptAsync(own));
    }

    [Fact]
    public async Task No_Vault_token_or_JWT_reaches_the_logs_Status_or_gRPC_errors()
    {
        using var logs = new CapturingLoggerProvider();
        // Two earlier plugin instances, two KEKs the logged instance has never unwrapped.
        var seed = RandomNumberGenerator.GetBytes(32);
        var stored = new List<Protocol.V2.EncryptResponse>();
        for (var i = 0; i < 2; i++)
        {
            await using var writer = await StartAsync();
            stored.Add(await writer.Apiserver.EncryptAsync(seed));
        }

        var config = Config() with { Logging = new LoggingConfig { Level = LogLevel.Debug } };
        await using var plugin = await PluginHost.StartAsync(config, new Hosting.ServerDependencies { ExtraLogger = logs });
        await plugin.WaitForProbeAsync();
        var texts = new List<string>();

        _vault.RevokeAll(); // forces a 403 and a re-login on the next Vault call
        Assert.Equal(seed, await plugin.Apiserver.DecryptAsync(stored[0]));
        _vault.PolicyDenies = true;
        var denied = await Assert.ThrowsAsync<RpcException>(() => plugin.Apiserver.DecryptAsync(stored[1]));
        Assert.Equal(StatusCode.FailedPrecondition, denied.StatusCode);
        texts.Add(denied.Status.Detail);
        await plugin.App.Services.GetRequiredService<RootKeyHealthMonitor>().ProbeOnceAsync(CancellationToken.None);
        texts.Add((await plugin.Apiserver.StatusAsync()).Healthz);
        await plugin.DisposeAsync();
        texts.AddRange(logs.Lines);

        var secrets = _vault.IssuedTokens.Append("projected-sa-jwt").ToList();
        Assert.True(secrets.Count >= 3);
        Assert.NotEmpty(logs.Lines);
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(texts, text => text.Contains(secret, StringComparison.Ordinal));
        }
    }
}
