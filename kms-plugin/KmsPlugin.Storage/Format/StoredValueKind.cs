namespace KmsPlugin.Storage.Format;

/// <summary>How kube-apiserver stored one etcd value, told from its prefix (<see cref="StoragePrefixes"/>).</summary>
public enum StoredValueKind
{
    /// <summary>No <c>k8s:enc:</c> prefix: never encrypted, or written by the <c>identity</c> provider (which adds no prefix).</summary>
    Plaintext,

    AesCbc,

    AesGcm,

    Secretbox,

    KmsV1,

    KmsV2,

    /// <summary>Starts with <c>k8s:enc:</c> but with no prefix this version of the apiserver writes.</summary>
    UnrecognizedEncrypted,
}
