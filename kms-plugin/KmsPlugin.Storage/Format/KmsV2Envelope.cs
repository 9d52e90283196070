using Google.Protobuf;
using KmsPlugin.Core.Errors;
using KmsPlugin.Storage.V2;

namespace KmsPlugin.Storage.Format;

/// <summary>
/// The apiserver's KMS v2 envelope transform (envelope.go <c>TransformToStorage</c> / <c>TransformFromStorage</c>):
/// the object is encrypted with a key obtained from the DEK source (the plaintext the plugin's Decrypt returns),
/// and stored with everything Encrypt returned for that DEK source. AAD is always the full etcd key.
/// </summary>
public static class KmsV2Envelope
{
    /// <summary>
    /// Builds the EncryptedObject an apiserver would store for <paramref name="plaintext"/> under the etcd key
    /// <paramref name="etcdKey"/>, given the DEK source and what the plugin's Encrypt returned for it.
    /// </summary>
    public static EncryptedObject Seal(EncryptedDEKSourceType type, ReadOnlySpan<byte> dekSource, string keyId, ByteString encryptedDekSource,
        IEnumerable<KeyValuePair<string, ByteString>> annotations, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> etcdKey)
    {
        ArgumentNullException.ThrowIfNull(encryptedDekSource);
        ArgumentNullException.ThrowIfNull(annotations);
        var data = type switch
        {
            EncryptedDEKSourceType.HkdfSha256XnonceAesGcmSeed => ExtendedNonceGcm.Seal(dekSource, plaintext, etcdKey),
            EncryptedDEKSourceType.AesGcmKey => StandardGcm.Seal(dekSource, plaintext, etcdKey),
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown DEK source type"),
        };
        var encryptedObject = new EncryptedObject
        {
            EncryptedData = ByteString.CopyFrom(data),
            KeyID = keyId,
            EncryptedDEKSource = encryptedDekSource,
            EncryptedDEKSourceType = type,
        };
        foreach (var (key, value) in annotations)
        {
            encryptedObject.Annotations.Add(key, value);
        }

        return encryptedObject;
    }

    /// <summary>Decrypts a stored object with its DEK source; the caller owns (and should zero) the plaintext.</summary>
    /// <exception cref="KmsPluginException">Corruption when it does not decrypt.</exception>
    public static byte[] Open(EncryptedObject encryptedObject, ReadOnlySpan<byte> dekSource, ReadOnlySpan<byte> etcdKey)
    {
        ArgumentNullException.ThrowIfNull(encryptedObject);
        return encryptedObject.EncryptedDEKSourceType switch
        {
            EncryptedDEKSourceType.HkdfSha256XnonceAesGcmSeed => ExtendedNonceGcm.Open(dekSource, encryptedObject.EncryptedData.Span, etcdKey),
            EncryptedDEKSourceType.AesGcmKey => StandardGcm.Open(dekSource, encryptedObject.EncryptedData.Span, etcdKey),
            var other => throw new KmsPluginException(KmsErrorKind.Corruption, $"unknown encryptedDEKSourceType: {(int)other}"),
        };
    }
}
