using System.Text;
using KmsPlugin.Cli;
using KmsPlugin.Storage.Format;
using KmsPlugin.Storage.V2;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Storage.Tests;

/// <summary>The encoder and decoder around a real plugin: what an apiserver writes with our plugin, read back through the socket.</summary>
public sealed class PluginRoundTripTests
{
    [Theory]
    [InlineData(EncryptedDEKSourceType.HkdfSha256XnonceAesGcmSeed)]
    [InlineData(EncryptedDEKSourceType.AesGcmKey)]
    public async Task An_object_sealed_under_a_seed_the_plugin_encrypted_decodes_and_opens_after_Decrypt_through_the_socket(EncryptedDEKSourceType type)
    {
        await using var plugin = await PluginHost.StartLocalAsync();
        var status = await plugin.Apiserver.StatusAsync();
        using var writer = await ApiserverStorageWriter.StartAsync(plugin.Apiserver, "kms-plugin", type);
        const string etcdKey = "/registry/secrets/default/db-password";
        var stored = ApiserverStorageWriter.KubernetesObject("db-password");

        var value = writer.Seal(etcdKey, stored);

        Assert.True(value.AsSpan().StartsWith("k8s:enc:kms:v2:kms-plugin:"u8));
        Assert.True(KmsV2StoredValue.TryDecode(value, out var decoded, out var problem), problem);
        var encryptedObject = decoded!.EncryptedObject;
        Assert.Equal(status.KeyId, encryptedObject.KeyID);
        Assert.Equal(type, encryptedObject.EncryptedDEKSourceType);
        Assert.Equal(writer.Encrypted.Ciphertext, encryptedObject.EncryptedDEKSource);
        Assert.Equal(writer.Encrypted.Annotations.OrderBy(a => a.Key), encryptedObject.Annotations.OrderBy(a => a.Key));

        // What an apiserver does after a restart: Decrypt the stored DEK source through the plugin, then open.
        var dekSource = await new PluginDekSourceDecryptor(plugin.Apiserver).DecryptAsync(encryptedObject, CancellationToken.None);
        Assert.Equal(stored, KmsV2Envelope.Open(encryptedObject, dekSource, Encoding.UTF8.GetBytes(etcdKey)));
    }

    [Fact]
    public async Task Two_objects_under_one_seed_have_fresh_info_and_nonce_each()
    {
        await using var plugin = await PluginHost.StartLocalAsync();
        using var writer = await ApiserverStorageWriter.StartAsync(plugin.Apiserver, "kms-plugin");
        Assert.True(KmsV2StoredValue.TryDecode(writer.Seal("/registry/secrets/a/x", "same"u8), out var first, out _));
        Assert.True(KmsV2StoredValue.TryDecode(writer.Seal("/registry/secrets/a/x", "same"u8), out var second, out _));
        Assert.NotEqual(first!.EncryptedObject.EncryptedData.Span[..44].ToArray(), second!.EncryptedObject.EncryptedData.Span[..44].ToArray());
        Assert.Equal(DekSourceIdentity.Of(first.EncryptedObject), DekSourceIdentity.Of(second.EncryptedObject));
    }
}
