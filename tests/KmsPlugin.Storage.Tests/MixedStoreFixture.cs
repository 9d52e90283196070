using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using KmsPlugin.Configuration;
using KmsPlugin.Configuration.Providers;
using KmsPlugin.Storage.Format;
using KmsPlugin.Storage.V2;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Storage.Tests;

/// <summary>
/// A real etcd holding what a cluster mid-rotation holds, written in the exact apiserver format: KMS v2 values of our
/// plugin under the new root key (current), under the old root key (type 1, and type 0 from a 1.27 apiserver), under a
/// root key no longer configured, a value of another KMS provider, plaintext, every other provider's prefix, a value
/// moved to another etcd key (does not authenticate), and a corrupted one. The plugin configured with the new root key
/// as primary and the old one decrypt-only keeps running for <c>--verify</c>.
/// </summary>
public sealed class MixedStoreFixture : IAsyncLifetime, IDisposable
{
    public const string Provider = "kms-plugin";
    public const string OtherProvider = "other-kms";

    private readonly TempDirectory _directory = new();
    private EtcdServer? _etcd;
    private PluginHost? _plugin;

    public EtcdServer Etcd => _etcd!;

    /// <summary>The plugin as configured after the rotation: root keys [new (primary), old].</summary>
    public PluginHost Plugin => _plugin!;

    /// <summary>The etcd prefix (kube-apiserver's --etcd-prefix) of this store.</summary>
    public string Prefix { get; } = "/mixed-" + Guid.NewGuid().ToString("N")[..8] + "/registry";

    public string NewKeyId { get; private set; } = "";

    public string OldKeyId { get; private set; } = "";

    public string RemovedKeyId { get; private set; } = "";

    /// <summary>The plugin's configuration file (root keys new, old), for <c>--config</c>.</summary>
    public string ConfigFile => _directory.FilePath("kms-plugin.yaml");

    public async Task InitializeAsync()
    {
        _etcd = await EtcdServer.StartAsync();

        // Before the rotation: a plugin with only the old root key; one apiserver at 1.29 (type 1), one at 1.27 (type 0).
        await using (var before = await StartPluginAsync(("old", "old.key")))
        {
            using var old1 = await ApiserverStorageWriter.StartAsync(before.Apiserver, Provider);
            using var old0 = await ApiserverStorageWriter.StartAsync(before.Apiserver, Provider, EncryptedDEKSourceType.AesGcmKey);
            OldKeyId = old1.KeyId;
            for (var i = 0; i < 3; i++)
            {
                await PutSealedAsync(old1, $"secrets/default/old-{i}");
            }

            for (var i = 0; i < 2; i++)
            {
                await PutSealedAsync(old0, $"secrets/default/legacy-{i}");
            }
        }

        // A root key that was removed from the configuration since: its data is unknown and unreadable now.
        await using (var removed = await StartPluginAsync(("removed", "removed.key")))
        {
            using var writer = await ApiserverStorageWriter.StartAsync(removed.Apiserver, Provider);
            RemovedKeyId = writer.KeyId;
            await PutSealedAsync(writer, "secrets/default/stray-0");
        }

        // After the rotation: the new root key is primary, the old one decrypt-only.
        _plugin = await StartPluginAsync(("new", "new.key"), ("old", "old.key"));
        using (var current = await ApiserverStorageWriter.StartAsync(_plugin.Apiserver, Provider))
        {
            NewKeyId = current.KeyId;
            for (var i = 0; i < 5; i++)
            {
                await PutSealedAsync(current, $"secrets/default/new-{i}");
            }

            await PutSealedAsync(current, "configmaps/kube-system/cm-new-0");

            // Sealed for one etcd key, stored under another: the AAD no longer matches (as after a raw etcd copy).
            await Etcd.PutAsync(Key("secrets/default/moved-0"), current.Seal(Key("secrets/default/moved-from"), ApiserverStorageWriter.KubernetesObject("moved")));
        }

        // Another KMS v2 provider of the same apiserver (the upstream base64 mock's shape: key_id "1").
        var seed = RandomNumberGenerator.GetBytes(32);
        var foreign = KmsV2Envelope.Seal(EncryptedDEKSourceType.HkdfSha256XnonceAesGcmSeed, seed, "1", ByteString.CopyFromUtf8(Convert.ToBase64String(seed)),
            [new("local-kek.kms.kubernetes.io", ByteString.CopyFromUtf8("encrypted-local-kek"))], "foreign"u8, Encoding.UTF8.GetBytes(Key("secrets/default/other-0")));
        await Etcd.PutAsync(Key("secrets/default/other-0"), new KmsV2StoredValue(OtherProvider, foreign).Encode());

        await Etcd.PutAsync(Key("secrets/default/plain-0"), ApiserverStorageWriter.KubernetesObject("plain-0"));
        await Etcd.PutAsync(Key("secrets/default/plain-1"), ApiserverStorageWriter.KubernetesObject("plain-1"));
        await Etcd.PutAsync(Key("secrets/default/cbc-0"), [.. "k8s:enc:aescbc:v1:key1:"u8, .. RandomNumberGenerator.GetBytes(48)]);
        await Etcd.PutAsync(Key("secrets/default/gcm-0"), [.. "k8s:enc:aesgcm:v1:key1:"u8, .. RandomNumberGenerator.GetBytes(48)]);
        await Etcd.PutAsync(Key("secrets/default/box-0"), [.. "k8s:enc:secretbox:v1:key1:"u8, .. RandomNumberGenerator.GetBytes(48)]);
        await Etcd.PutAsync(Key("secrets/default/v1-0"), [.. "k8s:enc:kms:v1:old-kms:"u8, .. RandomNumberGenerator.GetBytes(48)]);
        await Etcd.PutAsync(Key("secrets/default/broken-0"), [.. "k8s:enc:kms:v2:kms-plugin:"u8, 0xff, 0xff, 0xff, 0x01]);
        for (var i = 0; i < 3; i++)
        {
            await Etcd.PutAsync(Key($"configmaps/kube-system/cm-plain-{i}"), "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\"}"u8.ToArray());
        }

        await Etcd.PutAsync(Key("pods/default/pod-0"), ApiserverStorageWriter.KubernetesObject("pod-0"));
        await Etcd.PutAsync(Key("apiregistration.k8s.io/apiservices/v1.apps"), "{\"kind\":\"APIService\"}"u8.ToArray());

        // Outside the prefix: another apiserver's data in the same etcd, never counted.
        await Etcd.PutAsync(Prefix + "-other/secrets/default/x", ApiserverStorageWriter.KubernetesObject("x"));

        await File.WriteAllTextAsync(ConfigFile, $"""
            listen: unix://{_plugin.SocketPath}
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
    }

    /// <summary>The full etcd key of <paramref name="relative"/> (e.g. <c>secrets/default/x</c>).</summary>
    public string Key(string relative) => Prefix + "/" + relative;

    private Task PutSealedAsync(ApiserverStorageWriter writer, string relative) =>
        Etcd.PutAsync(Key(relative), writer.Seal(Key(relative), ApiserverStorageWriter.KubernetesObject(relative)));

    private Task<PluginHost> StartPluginAsync(params (string Name, string File)[] rootKeys) =>
        PluginHost.StartLocalAsync(_directory, adjust: config => config with
        {
            RootKeys = [.. rootKeys.Select(k => new RootKeyConfig { Name = k.Name, Provider = "local", Settings = new LocalRootKeyConfig(_directory.FilePath(k.File), true) })],
        });

    public async Task DisposeAsync()
    {
        if (_plugin is not null)
        {
            await _plugin.DisposeAsync();
        }

        if (_etcd is not null)
        {
            await _etcd.DisposeAsync();
        }
    }

    /// <summary>After <see cref="DisposeAsync"/> (xunit calls both): the directory outlives the plugin using it.</summary>
    public void Dispose() => _directory.Dispose();
}
