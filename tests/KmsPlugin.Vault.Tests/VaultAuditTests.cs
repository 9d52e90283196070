using KmsPlugin.TestSupport;

namespace KmsPlugin.Vault.Tests;

/// <summary>
/// <c>kms-plugin audit</c> after a Vault key rotation, against a real etcd: the one versionless entry names the key by
/// its current version only, yet the data written under the previous version is the entry's (status old, readable),
/// not unknown — the rotation runbook's gate (docs/rotation.md, A4 then B7) reads it that way.
/// </summary>
public sealed class VaultAuditTests : IAsyncLifetime
{
    private VaultPluginBed _bed = null!;
    private EtcdServer _etcd = null!;

    public async Task InitializeAsync()
    {
        _bed = await VaultPluginBed.StartAsync();
        _etcd = await EtcdServer.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _etcd.DisposeAsync();
        await _bed.DisposeAsync();
    }

    [Fact]
    public async Task Data_under_an_older_version_of_a_followed_key_is_shown_as_that_keys_and_readable_not_unknown()
    {
        var prefix = "/registry-" + Guid.NewGuid().ToString("N")[..8];
        string[] before = [$"{prefix}/secrets/a/one", $"{prefix}/secrets/a/two"];
        string[] after = [$"{prefix}/secrets/b/three"];
        await SealAsync(before);
        _bed.Key.Rotate(); // vault write -f transit/keys/k8s-secrets/rotate
        await SealAsync(after);

        await using var plugin = await _bed.StartPluginAsync();
        var config = _bed.Directory.FilePath("kms-plugin.yaml");
        await File.WriteAllTextAsync(config, $"listen: unix://{plugin.SocketPath}\nrootKeys:\n{_bed.RootKeyYaml()}\n");
        var v1 = _bed.KeyIdAt(1);
        var v2 = (await plugin.Apiserver.StatusAsync()).KeyId;
        Assert.Equal(_bed.KeyIdAt(2), v2);

        var run = await AuditRunner.RunAsync("--etcd-endpoints", _etcd.Endpoint, "--prefix", prefix, "--resources", "secrets",
            "--config", config, "--verify", "--require-key-id", v2, "--output", "json");

        // The gate still fails (two values are not under the new key_id yet), but for that reason only: nothing unknown.
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Equal(2, run.Json.GetProperty("requireKeyId").GetProperty("notUnderKeyId").GetInt64());
        var old = run.KeyId(v1);
        Assert.Equal("old", old.GetProperty("status").GetString());
        Assert.Equal("vault-prod", old.GetProperty("rootKey").GetString());
        Assert.Equal(2, old.GetProperty("objects").GetInt64());
        Assert.Equal(2, old.GetProperty("verify").GetProperty("objectsReadable").GetInt64());
        var current = run.KeyId(v2);
        Assert.Equal("current", current.GetProperty("status").GetString());
        Assert.Equal(1, current.GetProperty("verify").GetProperty("objectsReadable").GetInt64());
        Assert.DoesNotContain(run.Json.GetProperty("keyIds").EnumerateArray(), k => k.GetProperty("status").GetString() == "unknown");
    }

    [Fact]
    public async Task Data_under_another_Transit_key_stays_unknown()
    {
        var prefix = "/registry-" + Guid.NewGuid().ToString("N")[..8];
        _bed.Vault.CreateKey("other-cluster");
        await using (var other = await PluginHost.StartAsync(PluginYaml.Parse(_bed.Directory, [_bed.RootKeyYaml(keyName: "other-cluster")])))
        {
            await other.WaitForProbeAsync();
            using var writer = await ApiserverStorageWriter.StartAsync(other.Apiserver, "kms-plugin");
            await _etcd.PutAsync($"{prefix}/secrets/x/foreign", writer.Seal($"{prefix}/secrets/x/foreign", ApiserverStorageWriter.KubernetesObject("foreign")));
        }

        var config = _bed.Directory.FilePath("kms-plugin.yaml");
        await File.WriteAllTextAsync(config, $"listen: unix://{_bed.Directory.FilePath("unused.sock")}\nrootKeys:\n{_bed.RootKeyYaml()}\n");

        var run = await AuditRunner.RunAsync("--etcd-endpoints", _etcd.Endpoint, "--prefix", prefix, "--config", config, "--output", "json");

        Assert.Equal("unknown", run.KeyId(_bed.KeyIdAt(1, "other-cluster")).GetProperty("status").GetString());
    }

    /// <summary>Values written as kube-apiserver writes them, through a plugin on the key's current latest version.</summary>
    private async Task SealAsync(string[] keys)
    {
        await using var writer = await _bed.StartPluginAsync();
        using var apiserver = await ApiserverStorageWriter.StartAsync(writer.Apiserver, "kms-plugin");
        foreach (var key in keys)
        {
            await _etcd.PutAsync(key, apiserver.Seal(key, ApiserverStorageWriter.KubernetesObject(key)));
        }
    }
}
