using KmsPlugin.Core.Protocol;
using KmsPlugin.Storage.V2;

namespace KmsPlugin.Storage.Format;

/// <summary>
/// kube-apiserver's <c>ValidateEncryptedObject</c> (apiserver/pkg/storage/value/encrypt/envelope/kmsv2/envelope.go),
/// in its order: DEK source type, encrypted data, encrypted DEK source, key_id, annotations. The apiserver refuses to
/// read an object that fails any of these, so the audit counts such a value as corrupted.
/// </summary>
public static class EncryptedObjectRules
{
    /// <summary>Null when the apiserver would accept <paramref name="encryptedObject"/>, else the reason.</summary>
    public static string? Check(EncryptedObject encryptedObject)
    {
        ArgumentNullException.ThrowIfNull(encryptedObject);
        if (encryptedObject.EncryptedDEKSourceType is not (EncryptedDEKSourceType.AesGcmKey or EncryptedDEKSourceType.HkdfSha256XnonceAesGcmSeed))
        {
            return $"unknown encryptedDEKSourceType: {(int)encryptedObject.EncryptedDEKSourceType}";
        }

        if (encryptedObject.EncryptedData.IsEmpty)
        {
            return "encrypted data is empty";
        }

        return ApiserverRules.CheckCiphertext(encryptedObject.EncryptedDEKSource.Span)
            ?? ApiserverRules.CheckKeyId(encryptedObject.KeyID)
            ?? ApiserverRules.CheckAnnotations(encryptedObject.Annotations.Select(a => new KeyValuePair<string, int>(a.Key, a.Value.Length)));
    }
}
