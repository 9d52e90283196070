using System.Text;
using KmsPlugin.Cli;
using KmsPlugin.Configuration;
using KmsPlugin.Configuration.Providers;
using KmsPlugin.Storage.Format;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Storage.Tests;

/// <summary>
/// The last step of docs/rotation.md: <c>audit --require-key-id NEW</c> gates removing the old root key. It fails while
/// anything is under the old key and passes once storage migration rewrote everything, the old key then showing 0.
/// </summary>
public sealed class RotationGateTests(EtcdFixture fixture) : IClassFixture<EtcdFixture>
{
    [Fact]
    public async Task Require_key_id_passes_only_after_every_value_is_rewritten_under_the_new_root_key()
    {
        using var dir = new TempDirectory();
        var prefix = "/rotation-" + Guid.NewGuid().ToString("N")[..8];
        string[] keys = [$"{prefix}/secrets/a/one", $"{prefix}/secrets/a/two", $"{prefix}/secrets/b/three", $"{prefix}/configmaps/a/settings"];
        await using (var before = await StartAsync(dir, "old"))
        {
            using var writer = await ApiserverStorageWriter.StartAsync(before.Apiserver, "kms-plugin");
            foreach (var key in keys)
            {
                await fixture.Etcd.PutAsync(key, writer.Seal(key, ApiserverStorageWriter.KubernetesObject(key)));
            }
        }

        await using var after = await StartAsync(dir, "new", "old");
        var newKeyId = (await after.Apiserver.StatusAsync()).KeyId;
        var config = dir.FilePath("kms-plugin.yaml");
        await File.WriteAllTextAsync(config, $"""
            listen: unix://{after.SocketPath}
            rootKeys:
              - name: new
                provider: local
                local:
                  keyFile: new.key
              - name: old
                provider: local
                local:
                  keyFile: old.key
            """);
        string[] gate = ["--etcd-endpoints", fixture.Etcd.Endpoint, "--prefix", prefix, "--resources", "secrets,configmaps", "--config", config,
            "--require-key-id", newKeyId, "--output", "json"];

        var blocked = await AuditRunner.RunAsync(gate);
        Assert.True(blocked.ExitCode == 1, blocked.ToString());
        Assert.Equal(4, blocked.Json.GetProperty("requireKeyId").GetProperty("notUnderKeyId").GetInt64());

        // Storage migration (kubectl get ... -o json | kubectl replace -f -): the apiserver reads each object (Decrypt of
        // its DEK source through the plugin) and writes it again under its current DEK source, i.e. the new key_id.
        using (var apiserver = await ApiserverStorageWriter.StartAsync(after.Apiserver, "kms-plugin"))
        {
            var decryptor = new PluginDekSourceDecryptor(after.Apiserver);
            foreach (var key in keys)
            {
                Assert.True(KmsV2StoredValue.TryDecode(await fixture.Etcd.GetAsync(key), out var stored, out _));
                var dekSource = await decryptor.DecryptAsync(stored!.EncryptedObject, CancellationToken.None);
                var plaintext = KmsV2Envelope.Open(stored.EncryptedObject, dekSource, Encoding.UTF8.GetBytes(key));
                await fixture.Etcd.PutAsync(key, apiserver.Seal(key, plaintext));
            }
        }

        var passed = await AuditRunner.RunAsync([.. gate, "--verify"]);
        Assert.True(passed.ExitCode == 0, passed.ToString());
        Assert.Equal(0, passed.Json.GetProperty("requireKeyId").GetProperty("notUnderKeyId").GetInt64());
        var old = passed.Json.GetProperty("keyIds").EnumerateArray().Single(k => k.GetProperty("status").GetString() == "old");
        Assert.Equal(0, old.GetProperty("objects").GetInt64());
        Assert.Equal("old", old.GetProperty("rootKey").GetString());
        Assert.Equal(4, passed.KeyId(newKeyId).GetProperty("verify").GetProperty("objectsReadable").GetInt64());

        var table = await AuditRunner.RunAsync([.. gate[..^2]]);
        Assert.Contains($"require-key-id: OK: all 4 values are KMS v2 values under {newKeyId}", table.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Plaintext_left_from_before_encryption_fails_the_gate()
    {
        var prefix = "/plain-" + Guid.NewGuid().ToString("N")[..8];
        await fixture.Etcd.PutAsync(prefix + "/secrets/a/legacy", ApiserverStorageWriter.KubernetesObject("legacy"));

        var run = await AuditRunner.RunAsync("--etcd-endpoints", fixture.Etcd.Endpoint, "--prefix", prefix, "--resources", "secrets", "--require-key-id", "anything");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("require-key-id: FAILED: 1 of 1 values are not under anything", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Data_under_an_earlier_epoch_of_the_primary_is_old_and_the_epoch_in_use_is_current()
    {
        using var dir = new TempDirectory();
        var prefix = "/epochs-" + Guid.NewGuid().ToString("N")[..8];
        var state = dir.FilePath("state");

        // A, then B, then A again: the second A reports A.e1 (KeyIdHistory), and etcd holds values from both A periods.
        string first, again;
        await using (var a = await StartWithStateAsync(dir, state, "alpha"))
        {
            first = (await a.Apiserver.StatusAsync()).KeyId;
            using var writer = await ApiserverStorageWriter.StartAsync(a.Apiserver, "kms-plugin");
            await fixture.Etcd.PutAsync(prefix + "/secrets/a/first", writer.Seal(prefix + "/secrets/a/first", ApiserverStorageWriter.KubernetesObject("first")));
        }

        await using (var b = await StartWithStateAsync(dir, state, "bravo", "alpha"))
        {
            await b.Apiserver.StatusAsync();
        }

        await using (var a = await StartWithStateAsync(dir, state, "alpha", "bravo"))
        {
            again = (await a.Apiserver.StatusAsync()).KeyId;
            using var writer = await ApiserverStorageWriter.StartAsync(a.Apiserver, "kms-plugin");
            await fixture.Etcd.PutAsync(prefix + "/secrets/a/again", writer.Seal(prefix + "/secrets/a/again", ApiserverStorageWriter.KubernetesObject("again")));
        }

        Assert.Equal(first + ".e1", again);
        var config = dir.FilePath("kms-plugin.yaml");
        await File.WriteAllTextAsync(config, $"""
            listen: unix://{dir.FilePath("unused.sock")}
            stateDirectory: state
            rootKeys:
              - name: alpha
                provider: local
                local:
                  keyFile: alpha.key
              - name: bravo
                provider: local
                local:
                  keyFile: bravo.key
            """);
        var run = await AuditRunner.RunAsync("--etcd-endpoints", fixture.Etcd.Endpoint, "--prefix", prefix, "--resources", "secrets", "--config", config, "--output", "json");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal("current", run.KeyId(again).GetProperty("status").GetString());
        Assert.Equal(1, run.KeyId(again).GetProperty("objects").GetInt64());
        Assert.Equal("old", run.KeyId(first).GetProperty("status").GetString());
        Assert.Equal("alpha", run.KeyId(first).GetProperty("rootKey").GetString());
    }

    private static Task<PluginHost> StartAsync(TempDirectory dir, params string[] rootKeys) => StartWithStateAsync(dir, null, rootKeys);

    private static Task<PluginHost> StartWithStateAsync(TempDirectory dir, string? stateDirectory, params string[] rootKeys) =>
        PluginHost.StartLocalAsync(dir, adjust: config => config with
        {
            RootKeys = [.. rootKeys.Select(name => new RootKeyConfig { Name = name, Provider = "local", Settings = new LocalRootKeyConfig(dir.FilePath(name + ".key"), true) })],
            StateDirectory = stateDirectory,
        });
}
