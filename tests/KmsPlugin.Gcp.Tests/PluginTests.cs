using System.Security.Cryptography;
using Grpc.Core;
using KmsPlugin.Client;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Gcp.Tests.Fakes;
using KmsPlugin.TestSupport;
using Xunit.Abstractions;

namespace KmsPlugin.Gcp.Tests;

/// <summary>The whole plugin, configured from YAML with a gcp root key, over its Unix socket as kube-apiserver uses it.</summary>
public sealed class PluginTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Status_encrypt_decrypt_with_a_gcp_root_key_pass_the_apiservers_checks()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        await using var plugin = await PluginHost.StartAsync(bed.PluginConfig(bed.RootKeyYaml()));
        await plugin.WaitForProbeAsync();

        var status = await plugin.Apiserver.StatusAsync();
        Assert.Equal("ok", status.Healthz);
        Assert.Equal(KeyIds.Derive("gcp", $"{FakeCloudKms.CryptoKey}/cryptoKeyVersions/1"), status.KeyId);

        var seed = RandomNumberGenerator.GetBytes(32);
        var encrypted = await plugin.Apiserver.EncryptAsync(seed);
        Assert.Null(ApiserverEmulator.CheckEncrypt(encrypted, status.KeyId));
        Assert.Equal(seed, await plugin.Apiserver.DecryptAsync(encrypted));
        var report = await plugin.Apiserver.ProbeAsync();
        Assert.True(report.Ok, string.Join('\n', report.Lines));
    }

    [Fact]
    public async Task After_the_primary_version_moves_the_plugin_on_the_new_version_decrypts_old_ciphertexts_with_a_single_root_key_entry()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        var seeds = Enumerable.Range(0, 3).Select(_ => RandomNumberGenerator.GetBytes(32)).ToList();
        var stored = new List<Protocol.V2.EncryptResponse>();
        string oldKeyId;
        await using (var before = await PluginHost.StartAsync(bed.PluginConfig(bed.RootKeyYaml())))
        {
            oldKeyId = (await before.Apiserver.StatusAsync()).KeyId;
            foreach (var seed in seeds)
            {
                stored.Add(await before.Apiserver.EncryptAsync(seed));
            }
        }

        bed.Kms.AddVersion(makePrimary: true);

        // The same configuration (one entry following the primary): a restarted plugin opens at the new primary (a
        // running one follows it live: A_remote_rotation_is_followed_live_with_no_failed_call).
        await using var after = await PluginHost.StartAsync(bed.PluginConfig(bed.RootKeyYaml()));
        await after.WaitForProbeAsync();
        var newKeyId = (await after.Apiserver.StatusAsync()).KeyId;
        Assert.NotEqual(oldKeyId, newKeyId);
        Assert.Equal(KeyIds.Derive("gcp", $"{FakeCloudKms.CryptoKey}/cryptoKeyVersions/2"), newKeyId);
        var decryptsBefore = bed.Kms.Requests("decrypt");
        for (var i = 0; i < seeds.Count; i++)
        {
            Assert.Equal(seeds[i], await after.Apiserver.DecryptAsync(stored[i]));
        }

        Assert.Equal(1, bed.Kms.Requests("decrypt") - decryptsBefore);
        var fresh = await after.Apiserver.EncryptAsync(seeds[0]);
        Assert.Equal(newKeyId, fresh.KeyId);
        Assert.Equal(seeds[0], await after.Apiserver.DecryptAsync(fresh));
    }

    [Fact]
    public async Task A_remote_rotation_is_followed_live_with_no_failed_call()
    {
        await using var bed = await GcpTestBed.StartAsync();
        var first = bed.Kms.AddVersion();
        var second = first + 1;
        await RemoteVersionFollowingScenario.RunAsync(bed.Directory, bed.RootKeyYaml(), new RemoteKeyVersions
        {
            Provider = "gcp",
            Rotate = () => Assert.Equal(second, bed.Kms.AddVersion(makePrimary: true)), // a rotation: new version, made primary
            RollBack = () => bed.Kms.SetPrimary(first), // gcloud kms keys update --primary-version
            WrapsWithNewVersion = () => bed.Kms.Encrypts(second),
        }, output.WriteLine);
    }

    [Fact]
    public async Task A_KMS_slower_than_the_apiservers_deadline_gives_DeadlineExceeded_and_the_plugin_keeps_serving()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        await RemoteDeadlineScenario.RunAsync(() => PluginHost.StartAfterProbeAsync(bed.PluginConfig(bed.RootKeyYaml())),
            () => bed.Kms.Faults.Add(new Fault { Operation = "decrypt", Action = FaultAction.Delay, Delay = TimeSpan.FromSeconds(30) }),
            bed.Kms.Faults.Clear);
    }
}
