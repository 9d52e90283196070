using System.Security.Cryptography;
using Google.Protobuf;
using KmsPlugin.Client;
using KmsPlugin.Protocol.V2;
using KmsPlugin.Storage.Format;
using KmsPlugin.Storage.V2;

namespace KmsPlugin.TestSupport;

/// <summary>
/// Writes etcd values the way kube-apiserver's KMS v2 provider does (envelope.go): one DEK source (32 random bytes)
/// per key_id and apiserver start, sent once to the plugin's Encrypt; every object then sealed under it with the etcd
/// key as AAD and stored as <c>k8s:enc:kms:v2:&lt;name&gt;:</c> + EncryptedObject. The DEK source stays in memory
/// only, as in the apiserver.
/// </summary>
public sealed class ApiserverStorageWriter : IDisposable
{
    private readonly byte[] _dekSource;

    private ApiserverStorageWriter(string providerName, EncryptedDEKSourceType type, byte[] dekSource, EncryptResponse encrypted)
    {
        ProviderName = providerName;
        Type = type;
        _dekSource = dekSource;
        Encrypted = encrypted;
    }

    /// <summary>The EncryptionConfiguration kms provider name.</summary>
    public string ProviderName { get; }

    public EncryptedDEKSourceType Type { get; }

    /// <summary>What the plugin's Encrypt returned for the DEK source.</summary>
    public EncryptResponse Encrypted { get; }

    public string KeyId => Encrypted.KeyId;

    /// <summary>A new DEK source encrypted through the plugin, as an apiserver does at start or on a key_id change.</summary>
    public static async Task<ApiserverStorageWriter> StartAsync(ApiserverEmulator plugin, string providerName,
        EncryptedDEKSourceType type = EncryptedDEKSourceType.HkdfSha256XnonceAesGcmSeed)
    {
        ArgumentNullException.ThrowIfNull(plugin);
        var dekSource = RandomNumberGenerator.GetBytes(32);
        var encrypted = await plugin.EncryptAsync(dekSource);
        return new ApiserverStorageWriter(providerName, type, dekSource, encrypted);
    }

    /// <summary>The etcd value for <paramref name="plaintext"/> stored at <paramref name="etcdKey"/>.</summary>
    public byte[] Seal(string etcdKey, ReadOnlySpan<byte> plaintext)
    {
        var encryptedObject = KmsV2Envelope.Seal(Type, _dekSource, Encrypted.KeyId, Encrypted.Ciphertext, Encrypted.Annotations, plaintext,
            System.Text.Encoding.UTF8.GetBytes(etcdKey));
        return new KmsV2StoredValue(ProviderName, encryptedObject).Encode();
    }

    /// <summary>A plausible stored object: the k8s protobuf envelope magic (<c>k8s\0</c>) and some bytes.</summary>
    public static byte[] KubernetesObject(string name) => [.. "k8s\0"u8, .. System.Text.Encoding.UTF8.GetBytes("v1 Secret " + name)];

    public void Dispose() => CryptographicOperations.ZeroMemory(_dekSource);
}
