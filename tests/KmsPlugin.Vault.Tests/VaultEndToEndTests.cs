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
public sealed class VaultEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    private VaultPluginBed _bed = null!;

    private FakeVault Vault => _bed.Vault;

    public async Task InitializeAsync() => _bed = await VaultPluginBed.StartAsync(vaultNamespace: "platform");

    public async Task DisposeAsync() => await _bed.DisposeAsync();

    [Fact]
    public async Task Status_encrypt_decrypt_over_the_socket_pass_the_apiservers_checks()
    {
        await using var plugin = await _bed.StartPluginAsync();

        var status = await plugin.Apiserver.StatusAsync();
        var report = await plugin.Apiserver.ProbeAsync();

        Assert.True(report.Ok, string.Join('\n', report.Lines));
        Assert.Equal("ok", status.Healthz);
        Assert.StartsWith("vault-", status.KeyId, StringComparison.Ordinal);
        Assert.Null(ApiserverEmulator.CheckStatus(status));
        Assert.Equal([VaultPluginBed.Jwt], Vault.LoginCredentialsSeen);
        Assert.All(Vault.NamespacesSeen, ns => Assert.Equal("platform", ns));
    }

    [Fact]
    public async Task After_a_Vault_key_rotation_the_plugin_on_the_new_version_decrypts_old_data_with_a_single_root_key_entry()
    {
        var seeds = Enumerable.Range(0, 3).Select(_ => RandomNumberGenerator.GetBytes(32)).ToList();
        var stored = new List<Protocol.V2.EncryptResponse>();
        await using (var before = await _bed.StartPluginAsync())
        {
            foreach (var seed in seeds)
            {
                stored.Add(await before.Apiserver.EncryptAsync(seed));
            }
        }

        _bed.Key.Rotate(); // vault write -f transit/keys/k8s-secrets/rotate

        // The same configuration (one versionless entry): a restarted plugin wraps with version 2, a new key_id (a running
        // one follows the rotation live: A_remote_rotation_is_followed_live_with_no_failed_call).
        await using var after = await _bed.StartPluginAsync();
        var status = await after.Apiserver.StatusAsync();

        Assert.NotEqual(stored[0].KeyId, status.KeyId);
        Assert.Equal("ok", status.Healthz);
        var decryptsBefore = Vault.Calls("decrypt");
        for (var i = 0; i < seeds.Count; i++)
        {
            Assert.Equal(seeds[i], await after.Apiserver.DecryptAsync(stored[i]));
        }

        Assert.Equal(1, Vault.Calls("decrypt") - decryptsBefore); // one KEK of version 1, unwrapped once

        var fresh = await after.Apiserver.EncryptAsync(seeds[0]);
        Assert.Equal(status.KeyId, fresh.KeyId);
        Assert.Equal(2, (int)Vault.EncryptRequests.Last()["key_version"]!);
        Assert.Equal(seeds[0], await after.Apiserver.DecryptAsync(fresh));
    }

    [Fact]
    public async Task Data_of_another_Transit_key_is_refused_naming_its_key_id()
    {
        Protocol.V2.EncryptResponse stored;
        await using (var before = await _bed.StartPluginAsync())
        {
            stored = await before.Apiserver.EncryptAsync(RandomNumberGenerator.GetBytes(32));
        }

        // Another key whose versions (1) look the same in a wrap: only the key_id tells them apart.
        Vault.CreateKey("k8s-secrets-2");
        await using var after = await _bed.StartPluginAsync(keyName: "k8s-secrets-2");
        var decrypts = Vault.Calls("decrypt");
        var error = await Assert.ThrowsAsync<RpcException>(() => after.Apiserver.DecryptAsync(stored));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains(KeyIdHash.Of(stored.KeyId), error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(decrypts, Vault.Calls("decrypt"));
    }

    [Fact]
    public async Task A_remote_rotation_is_followed_live_with_no_failed_call()
    {
        var versionBefore = _bed.Key.Versions.Count;
        var versionAfter = versionBefore + 1;
        await RemoteVersionFollowingScenario.RunAsync(_bed.Directory, _bed.RootKeyYaml(), new RemoteKeyVersions
        {
            Provider = "vault",
            Rotate = _bed.Key.Rotate, // vault write -f transit/keys/k8s-secrets/rotate
            RollBack = () => _bed.Key.ReportedLatestVersion = versionBefore, // a standby or replica still before the rotation
            WrapsWithNewVersion = () => Vault.EncryptRequests.Count(r => (int?)r["key_version"] == versionAfter),
        }, output.WriteLine);
    }

    [Fact]
    public async Task Throttling_is_visible_in_metrics_by_provider_and_outcome()
    {
        await RemoteThrottlingScenario.RunAsync(port => _bed.PluginConfig(healthPort: port), new RemoteThrottling
        {
            Provider = "vault",
            Throttle = () => Vault.Fault = new FakeFault(FaultKind.Throttling, "decrypt"), // 429, rate limit quota exceeded
            Clear = () => Vault.Fault = null,
            UnwrapRequests = () => Vault.Calls("decrypt"),
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
        int attempts, string reason) =>
        await RemoteFaultScenario.RunAsync(() => _bed.PluginConfig(), new RemoteUnwrapFault
        {
            RootKeyName = "vault-prod",
            Inject = () => Vault.Fault = new FakeFault(fault, "decrypt"),
            Clear = () => Vault.Fault = null,
            UnwrapRequests = () => Vault.Calls("decrypt"),
            TokenPrefix = "hvs.",
        }, code, attempts, reason);

    [Fact]
    public Task A_Vault_slower_than_the_deadline_gives_DeadlineExceeded_and_the_plugin_keeps_serving() =>
        RemoteDeadlineScenario.RunAsync(() => _bed.StartPluginAsync(),
            () => Vault.Fault = new FakeFault(FaultKind.None, "decrypt", latency: TimeSpan.FromSeconds(30)),
            () => Vault.Fault = null);

    [Fact]
    public async Task No_Vault_token_or_JWT_reaches_the_logs_Status_or_gRPC_errors()
    {
        using var logs = new CapturingLoggerProvider();
        // Two earlier plugin instances, two KEKs the logged instance has never unwrapped.
        var seed = RandomNumberGenerator.GetBytes(32);
        var stored = new List<Protocol.V2.EncryptResponse>();
        for (var i = 0; i < 2; i++)
        {
            await using var writer = await _bed.StartPluginAsync();
            stored.Add(await writer.Apiserver.EncryptAsync(seed));
        }

        var config = _bed.PluginConfig() with { Logging = new LoggingConfig { Level = LogLevel.Debug } };
        await using var plugin = await PluginHost.StartAsync(config, new Hosting.ServerDependencies { ExtraLogger = logs });
        await plugin.WaitForProbeAsync();
        var texts = new List<string>();

        Vault.RevokeAll(); // forces a 403 and a re-login on the next Vault call
        Assert.Equal(seed, await plugin.Apiserver.DecryptAsync(stored[0]));
        Vault.PolicyDenies = true;
        var denied = await Assert.ThrowsAsync<RpcException>(() => plugin.Apiserver.DecryptAsync(stored[1]));
        Assert.Equal(StatusCode.FailedPrecondition, denied.StatusCode);
        texts.Add(denied.Status.Detail);
        await plugin.App.Services.GetRequiredService<RootKeyHealthMonitor>().ProbeOnceAsync(CancellationToken.None);
        texts.Add((await plugin.Apiserver.StatusAsync()).Healthz);
        await plugin.DisposeAsync();
        texts.AddRange(logs.Lines);

        var secrets = Vault.IssuedTokens.Append(VaultPluginBed.Jwt).ToList();
        Assert.True(secrets.Count >= 3);
        Assert.NotEmpty(logs.Lines);
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(texts, text => text.Contains(secret, StringComparison.Ordinal));
        }
    }
}
