namespace KmsPlugin.Storage.Format;

/// <summary>
/// The prefixes kube-apiserver writes in front of an encrypted etcd value. Source: the constants of
/// apiserver/pkg/server/options/encryptionconfig/config.go (<c>aesCBCTransformerPrefixV1</c> and siblings), each
/// followed by the key's or provider's name and a colon, e.g. <c>k8s:enc:aescbc:v1:key1:</c> or
/// <c>k8s:enc:kms:v2:myKmsPlugin:</c>. The <c>identity</c> provider writes the object as it is, with no prefix
/// (apiserver/pkg/storage/value/encrypt/identity/identity.go), and refuses to read anything starting with
/// <see cref="Encrypted"/>, which is reserved for encrypted data.
/// </summary>
public static class StoragePrefixes
{
    /// <summary>Every encrypted value starts with this; nothing else may (identity.go).</summary>
    public const string Encrypted = "k8s:enc:";

    public const string AesCbcV1 = "k8s:enc:aescbc:v1:";

    public const string AesGcmV1 = "k8s:enc:aesgcm:v1:";

    public const string SecretboxV1 = "k8s:enc:secretbox:v1:";

    public const string KmsV1 = "k8s:enc:kms:v1:";

    /// <summary><c>kmsTransformerPrefixV2</c>; the value continues with the provider name, a colon, and the EncryptedObject.</summary>
    public const string KmsV2 = "k8s:enc:kms:v2:";

    /// <summary>The full prefix of a KMS v2 value for the EncryptionConfiguration provider <paramref name="providerName"/>.</summary>
    public static string ForKmsV2(string providerName)
    {
        ArgumentException.ThrowIfNullOrEmpty(providerName);
        if (providerName.Contains(':', StringComparison.Ordinal))
        {
            // validation_encryption.go rejects ':' in a KMS provider name: it would make the prefix ambiguous.
            throw new ArgumentException("a KMS provider name may not contain ':'", nameof(providerName));
        }

        return KmsV2 + providerName + ":";
    }
}
