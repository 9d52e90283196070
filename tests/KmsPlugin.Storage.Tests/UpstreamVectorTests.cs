using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using KmsPlugin.Core.Errors;
using KmsPlugin.Storage.Format;
using KmsPlugin.Storage.V2;
using static KmsPlugin.Storage.Tests.UpstreamVectors;

namespace KmsPlugin.Storage.Tests;

/// <summary>The storage format checked byte for byte against data recorded by upstream Kubernetes (section 6 of the reference).</summary>
public sealed class UpstreamVectorTests
{
    private static readonly byte[] Aad = Encoding.ASCII.GetBytes(UpstreamVectors.Aad);

    [Fact]
    public void Hkdf_expand_of_the_recorded_seed_and_info_gives_the_recorded_DEK()
    {
        var key = new byte[32];
        ExtendedNonceGcm.DeriveKey(Bytes(KdfSeed), Bytes(KdfData).AsSpan(0, 32), key);
        Assert.Equal(KdfDerivedKey, Convert.ToHexStringLower(key));
    }

    [Fact]
    public void Extended_nonce_data_recorded_by_the_apiserver_opens_to_its_plaintext()
    {
        var plaintext = ExtendedNonceGcm.Open(Bytes(KdfSeed), Bytes(KdfData), Aad);
        Assert.Equal(UpstreamVectors.Plaintext, Encoding.ASCII.GetString(plaintext));
    }

    [Fact]
    public void Extended_nonce_encoder_with_the_recorded_info_and_nonce_reproduces_the_recorded_bytes()
    {
        var data = Bytes(KdfData);
        var sealedData = ExtendedNonceGcm.Seal(Bytes(KdfSeed), data.AsSpan(0, 32), data.AsSpan(32, 12), Encoding.ASCII.GetBytes(UpstreamVectors.Plaintext), Aad);
        Assert.Equal(KdfData, Convert.ToHexStringLower(sealedData));
    }

    [Fact]
    public void Extended_nonce_data_under_another_etcd_key_does_not_open()
    {
        var error = Assert.Throws<KmsPluginException>(() => ExtendedNonceGcm.Open(Bytes(KdfSeed), Bytes(KdfData), "bambo0"u8));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
    }

    [Fact]
    public void Plain_gcm_data_recorded_by_the_apiserver_opens_and_reencodes_to_the_same_bytes()
    {
        var key = Encoding.ASCII.GetBytes(GcmKey);
        var data = Bytes(GcmData);
        Assert.Equal(UpstreamVectors.Plaintext, Encoding.ASCII.GetString(StandardGcm.Open(key, data, Aad)));
        Assert.Equal(GcmData, Convert.ToHexStringLower(StandardGcm.Seal(key, data.AsSpan(0, 12), Encoding.ASCII.GetBytes(UpstreamVectors.Plaintext), Aad)));
    }

    [Theory]
    [InlineData(AesGcmKeyValue, AesGcmKeyName, AesGcmKeyEncryptedDekSource, EncryptedDEKSourceType.AesGcmKey, 526, 394)]
    [InlineData(HkdfSeedValue, HkdfSeedName, HkdfSeedEncryptedDekSource, EncryptedDEKSourceType.HkdfSha256XnonceAesGcmSeed, 599, 465)]
    public void Etcd_values_written_by_released_apiservers_decode_to_the_expected_EncryptedObject(string hex, string name, string encryptedDekSource,
        EncryptedDEKSourceType type, int valueLength, int dataLength)
    {
        _ = name;
        var value = Bytes(hex);
        Assert.Equal(valueLength, value.Length);
        Assert.True(KmsV2StoredValue.TryDecode(value, out var decoded, out var problem), problem);
        Assert.Equal("kms-provider", decoded!.ProviderName);
        var encryptedObject = decoded.EncryptedObject;
        Assert.Equal("1", encryptedObject.KeyID);
        Assert.Equal(encryptedDekSource, encryptedObject.EncryptedDEKSource.ToStringUtf8());
        Assert.Equal(type, encryptedObject.EncryptedDEKSourceType);
        Assert.Equal(dataLength, encryptedObject.EncryptedData.Length);
        var annotation = Assert.Single(encryptedObject.Annotations);
        Assert.Equal("local-kek.kms.kubernetes.io", annotation.Key);
        Assert.Equal("encrypted-local-kek", annotation.Value.ToStringUtf8());
    }

    [Theory]
    [InlineData(AesGcmKeyValue, AesGcmKeyName)]
    [InlineData(HkdfSeedValue, HkdfSeedName)]
    public void Etcd_values_written_by_released_apiservers_open_to_the_stored_Secret_with_the_etcd_key_as_AAD(string hex, string name)
    {
        Assert.True(KmsV2StoredValue.TryDecode(Bytes(hex), out var decoded, out _));
        var encryptedObject = decoded!.EncryptedObject;

        // The in-tree mock plugin is base64: its Decrypt of encryptedDEKSource is the base64 decoding.
        var dekSource = Convert.FromBase64String(encryptedObject.EncryptedDEKSource.ToStringUtf8());
        var plaintext = KmsV2Envelope.Open(encryptedObject, dekSource, Encoding.UTF8.GetBytes(EtcdPathPrefix + name));

        // A protobuf-encoded core/v1 Secret: "k8s\0" magic, then the runtime.Unknown envelope naming v1 Secret.
        Assert.True(plaintext.AsSpan().StartsWith("k8s\0\n\x000C\n\x0002v1\x0012\x0006Secret"u8));
        Assert.Contains(name, Encoding.UTF8.GetString(plaintext), StringComparison.Ordinal);

        var other = Encoding.UTF8.GetBytes(EtcdPathPrefix + "someone-else");
        Assert.Equal(KmsErrorKind.Corruption, Assert.Throws<KmsPluginException>(() => KmsV2Envelope.Open(encryptedObject, dekSource, other)).Kind);
    }

    [Theory]
    [InlineData(AesGcmKeyValue, AesGcmKeyName)]
    [InlineData(HkdfSeedValue, HkdfSeedName)]
    public void The_encoder_given_the_same_inputs_writes_exactly_the_bytes_the_apiserver_wrote(string hex, string name)
    {
        Assert.True(KmsV2StoredValue.TryDecode(Bytes(hex), out var decoded, out _));
        var recorded = decoded!.EncryptedObject;
        var dekSource = Convert.FromBase64String(recorded.EncryptedDEKSource.ToStringUtf8());
        var etcdKey = Encoding.UTF8.GetBytes(EtcdPathPrefix + name);
        var plaintext = KmsV2Envelope.Open(recorded, dekSource, etcdKey);
        var data = recorded.EncryptedData.ToByteArray();

        // Re-encrypt with the recorded info/nonce (the only random inputs), then build the object and the etcd value.
        var encryptedData = recorded.EncryptedDEKSourceType == EncryptedDEKSourceType.HkdfSha256XnonceAesGcmSeed
            ? ExtendedNonceGcm.Seal(dekSource, data.AsSpan(0, 32), data.AsSpan(32, 12), plaintext, etcdKey)
            : StandardGcm.Seal(dekSource, data.AsSpan(0, 12), plaintext, etcdKey);
        var rebuilt = new EncryptedObject
        {
            EncryptedData = ByteString.CopyFrom(encryptedData),
            KeyID = "1",
            EncryptedDEKSource = ByteString.CopyFromUtf8(recorded.EncryptedDEKSource.ToStringUtf8()),
            EncryptedDEKSourceType = recorded.EncryptedDEKSourceType,
        };
        rebuilt.Annotations.Add("local-kek.kms.kubernetes.io", ByteString.CopyFromUtf8("encrypted-local-kek"));

        Assert.Equal(hex, Convert.ToHexStringLower(new KmsV2StoredValue("kms-provider", rebuilt).Encode()));
        CryptographicOperations.ZeroMemory(plaintext);
    }

    [Fact]
    public void The_key_id_hash_is_the_one_in_the_apiservers_metrics()
    {
        // kmsv2_transformation_test.go expects key_id_hash="sha256:6b86b273...875b4b" for key_id "1".
        Assert.Equal("sha256:6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b", ApiserverKeyIdHash.Of("1"));
    }
}
