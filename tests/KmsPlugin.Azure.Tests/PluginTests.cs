using System.Security.Cryptography;
using Grpc.Core;
using KmsPlugin.Client;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;
using Xunit.Abstractions;

namespace KmsPlugin.Azure.Tests;

/// <summary>The whole plugin, configured from YAML with an azure root key, over its Unix socket as kube-apiserver uses it.</summary>
public sealed class PluginTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Status_encrypt_decrypt_with_an_azure_root_key_pass_the_apiservers_checks()
    {
        await using var bed = await AzureTestBed.StartAsync();
        var version = bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        await using var plugin = await PluginHost.StartAsync(bed.PluginConfig(bed.RootKeyYaml()));
        await plugin.WaitForProbeAsync();

        var status = await plugin.Apiserver.StatusAsync();
        Assert.Equal("ok", status.Healthz);
        Assert.Equal(KeyIds.Derive("azure", $"{bed.Vault.VaultUrl}/keys/{AzureTestBed.KeyName}/{version}"), status.KeyId);

        var seed = RandomNumberGenerator.GetBytes(32);
        var encrypted = await plugin.Apiserver.EncryptAsync(seed);
        Assert.Null(ApiserverEmulator.CheckEncrypt(encrypted, status.KeyId));
        Assert.Equal(seed, await plugin.Apiserver.DecryptAsync(encrypted));
        var report = await plugin.Apiserver.ProbeAsync();
        Assert.True(report.Ok, string.Join('\n', report.Lines));
    }

    [Fact]
    public async Task After_a_key_rotation_the_plugin_on_the_new_version_decrypts_old_ciphertexts_with_a_single_root_key_entry()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        var seeds = Enumerable.Range(0, 3).Select(_ => RandomNumberGenerator.GetBytes(32)).ToList();
        var stored = new List<Protocol.V2.EncryptResponse>();
        var config = bed.RootKeyYaml(); // one versionless entry, unchanged across the rotation
        string oldKeyId;
        await using (var before = await PluginHost.StartAsync(bed.PluginConfig(config)))
        {
            oldKeyId = (await before.Apiserver.StatusAsync()).KeyId;
            foreach (var seed in seeds)
            {
                stored.Add(await before.Apiserver.EncryptAsync(seed));
            }
        }

        var v2 = bed.Vault.AddRsaVersion(AzureTestBed.KeyName); // the vault's key rotates to a new version

        // A restarted plugin with the same configuration opens at the new version (a running one follows it live:
        // A_remote_rotation_is_followed_live_with_no_failed_call).
        await using var after = await PluginHost.StartAsync(bed.PluginConfig(config));
        await after.WaitForProbeAsync();
        var newKeyId = (await after.Apiserver.StatusAsync()).KeyId;
        Assert.NotEqual(oldKeyId, newKeyId);
        Assert.Equal(KeyIds.Derive("azure", $"{bed.Vault.VaultUrl}/keys/{AzureTestBed.KeyName}/{v2}"), newKeyId);
        Assert.All(stored, s => Assert.Equal(oldKeyId, s.KeyId));
        var unwrapsBefore = bed.Vault.Requests("unwrapkey");
        for (var i = 0; i < seeds.Count; i++)
        {
            Assert.Equal(seeds[i], await after.Apiserver.DecryptAsync(stored[i]));
        }

        Assert.Equal(1, bed.Vault.Requests("unwrapkey") - unwrapsBefore); // one KEK, unwrapped once, by its own version
        var fresh = await after.Apiserver.EncryptAsync(seeds[0]);
        Assert.Equal(newKeyId, fresh.KeyId);
        Assert.Equal(seeds[0], await after.Apiserver.DecryptAsync(fresh));
    }

    [Fact]
    public async Task A_remote_rotation_is_followed_live_with_no_failed_call()
    {
        await using var bed = await AzureTestBed.StartAsync();
        var first = bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        var second = "";
        await RemoteVersionFollowingScenario.RunAsync(bed.Directory, bed.RootKeyYaml(), new RemoteKeyVersions
        {
            Provider = "azure",
            Rotate = () => second = bed.Vault.AddRsaVersion(AzureTestBed.KeyName), // az keyvault key rotate
            RollBack = () => bed.Vault.ReportAsCurrent(AzureTestBed.KeyName, first), // a replica still before the rotation
            WrapsWithNewVersion = () => second.Length == 0 ? 0 : bed.Vault.Requests("wrapkey", second),
        }, output.WriteLine);
    }

    [Fact]
    public async Task A_vault_slower_than_the_apiservers_deadline_gives_DeadlineExceeded_quickly_and_the_plugin_keeps_serving()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        await RemoteDeadlineScenario.RunAsync(() => PluginHost.StartAfterProbeAsync(bed.PluginConfig(bed.RootKeyYaml())),
            () => bed.Vault.Faults.Add(new Fault { Operation = "unwrapkey", Action = FaultAction.Delay, Delay = TimeSpan.FromSeconds(30) }),
            bed.Vault.Faults.Clear);
    }
}
