using System.Text;
using Google.Protobuf;
using KmsPlugin.Storage.Format;
using KmsPlugin.Storage.V2;

namespace KmsPlugin.Storage.Tests;

/// <summary>Telling storage formats apart by prefix (encryptionconfig/config.go), and the apiserver's checks of an EncryptedObject.</summary>
public sealed class StoredValueHeaderTests
{
    [Theory]
    [InlineData("k8s\0\n\u000cv1 Secret", StoredValueKind.Plaintext, null, "plaintext")]
    [InlineData("{\"kind\":\"ConfigMap\"}", StoredValueKind.Plaintext, null, "plaintext")]
    [InlineData("", StoredValueKind.Plaintext, null, "plaintext")]
    [InlineData("k8s:enc:aescbc:v1:key1:\u0001\u0002", StoredValueKind.AesCbc, "key1", "aescbc:key1")]
    [InlineData("k8s:enc:aesgcm:v1:key2:xyz", StoredValueKind.AesGcm, "key2", "aesgcm:key2")]
    [InlineData("k8s:enc:secretbox:v1:key3:xyz", StoredValueKind.Secretbox, "key3", "secretbox:key3")]
    [InlineData("k8s:enc:kms:v1:old-kms:xyz", StoredValueKind.KmsV1, "old-kms", "kms:v1:old-kms")]
    [InlineData("k8s:enc:kms:v2:kms-provider:\n\u0001x", StoredValueKind.KmsV2, "kms-provider", "kms:v2:kms-provider")]
    [InlineData("k8s:enc:envelope:v1:name:xyz", StoredValueKind.UnrecognizedEncrypted, "envelope:v1", "unrecognized:envelope:v1")]
    public void The_prefix_gives_the_kind_and_the_key_or_provider_name(string value, StoredValueKind kind, string? name, string label)
    {
        var header = StoredValueHeader.Parse(Encoding.Latin1.GetBytes(value));
        Assert.Equal(kind, header.Kind);
        Assert.Equal(name, header.Name);
        Assert.Equal(label, header.Label);
        Assert.Equal(kind == StoredValueKind.UnrecognizedEncrypted, header.Problem is not null);
    }

    [Fact]
    public void The_payload_starts_after_the_name_and_its_colon()
    {
        var header = StoredValueHeader.Parse("k8s:enc:kms:v2:p:PAYLOAD"u8);
        Assert.Equal("k8s:enc:kms:v2:p:".Length, header.PayloadOffset);
    }

    [Theory]
    [InlineData("k8s:enc:kms:v2:no-colon-after-the-name")]
    [InlineData("k8s:enc:kms:v2::payload")]
    [InlineData("k8s:enc:aescbc:v1:")]
    public void A_known_prefix_without_a_name_is_a_problem_not_an_exception(string value)
    {
        var header = StoredValueHeader.Parse(Encoding.ASCII.GetBytes(value));
        Assert.NotNull(header.Problem);
        Assert.Null(header.Name);
    }

    [Fact]
    public void Provider_names_are_printed_safely()
    {
        var header = StoredValueHeader.Parse([.. "k8s:enc:kms:v2:"u8, 0x1b, (byte)'[', (byte)'x', 0xff, (byte)':', 1]);
        Assert.Equal("?[x?", header.Name);
    }

    [Fact]
    public void A_provider_name_with_a_colon_is_refused_when_encoding()
    {
        Assert.Throws<ArgumentException>(() => StoragePrefixes.ForKmsV2("a:b"));
    }

    [Fact]
    public void Garbage_after_a_KMS_v2_prefix_does_not_decode_and_says_why()
    {
        Assert.False(KmsV2StoredValue.TryDecode("k8s:enc:kms:v2:p:\u00ff\u00ff\u00ff"u8, out var decoded, out var problem));
        Assert.Null(decoded);
        Assert.StartsWith("the EncryptedObject does not parse", problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(7, "k", "abc", "x.io", "unknown encryptedDEKSourceType: 7")]
    [InlineData(1, "k", "", "x.io", "encrypted DEK source is empty")]
    [InlineData(1, "", "abc", "x.io", "key_id is empty")]
    [InlineData(1, "k", "abc", "Not-A-Domain", "annotation key")]
    public void The_apiservers_validation_of_an_EncryptedObject_is_applied(int type, string keyId, string dekSource, string annotation, string expected)
    {
        var encryptedObject = new EncryptedObject
        {
            EncryptedData = ByteString.CopyFromUtf8("data"),
            KeyID = keyId,
            EncryptedDEKSource = ByteString.CopyFromUtf8(dekSource),
            EncryptedDEKSourceType = (EncryptedDEKSourceType)type,
        };
        encryptedObject.Annotations.Add(annotation, ByteString.CopyFromUtf8("v"));
        var value = new KmsV2StoredValue("p", encryptedObject).Encode();
        Assert.False(KmsV2StoredValue.TryDecode(value, out _, out var problem));
        Assert.Contains(expected, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_encrypted_data_is_refused_as_the_apiserver_does()
    {
        var encryptedObject = new EncryptedObject { KeyID = "k", EncryptedDEKSource = ByteString.CopyFromUtf8("abc") };
        Assert.Equal("encrypted data is empty", EncryptedObjectRules.Check(encryptedObject));
    }

    [Fact]
    public void Objects_sharing_a_DEK_source_share_an_identity_and_annotations_or_key_id_separate_them()
    {
        EncryptedObject Make(string data, string keyId, string annotationValue)
        {
            var o = new EncryptedObject
            {
                EncryptedData = ByteString.CopyFromUtf8(data),
                KeyID = keyId,
                EncryptedDEKSource = ByteString.CopyFromUtf8("wrapped"),
                EncryptedDEKSourceType = EncryptedDEKSourceType.HkdfSha256XnonceAesGcmSeed,
            };
            o.Annotations.Add("b.example.io", ByteString.CopyFromUtf8(annotationValue));
            o.Annotations.Add("a.example.io", ByteString.CopyFromUtf8("1"));
            return o;
        }

        var first = DekSourceIdentity.Of(Make("one", "k1", "x"));
        Assert.Equal(first, DekSourceIdentity.Of(Make("two", "k1", "x")));
        Assert.NotEqual(first, DekSourceIdentity.Of(Make("one", "k2", "x")));
        Assert.NotEqual(first, DekSourceIdentity.Of(Make("one", "k1", "y")));
    }
}
