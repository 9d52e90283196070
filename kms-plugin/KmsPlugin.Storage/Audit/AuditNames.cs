using KmsPlugin.Storage.Format;

namespace KmsPlugin.Storage.Audit;

/// <summary>The words the table and the JSON use, in one place so both say the same.</summary>
public static class AuditNames
{
    public static string Of(KeyIdRole role) => role switch
    {
        KeyIdRole.Current => "current",
        KeyIdRole.Old => "old",
        KeyIdRole.Unknown => "unknown",
        _ => "not-checked",
    };

    public static string Of(StoredValueKind kind) => kind switch
    {
        StoredValueKind.Plaintext => "plaintext",
        StoredValueKind.AesCbc => "aescbc",
        StoredValueKind.AesGcm => "aesgcm",
        StoredValueKind.Secretbox => "secretbox",
        StoredValueKind.KmsV1 => "kmsV1",
        StoredValueKind.KmsV2 => "kmsV2",
        _ => "unrecognized",
    };

    /// <summary>The enum names of the upstream proto (EncryptedDEKSourceType).</summary>
    public const string AesGcmKey = "AES_GCM_KEY";

    public const string HkdfSeed = "HKDF_SHA256_XNONCE_AES_GCM_SEED";
}
