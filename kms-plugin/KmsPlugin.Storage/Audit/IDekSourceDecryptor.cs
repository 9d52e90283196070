using KmsPlugin.Storage.V2;

namespace KmsPlugin.Storage.Audit;

/// <summary>
/// Decrypts a stored object's encrypted DEK source through the KMS plugin, exactly as kube-apiserver would on a DEK
/// cache miss: Decrypt(ciphertext = encryptedDEKSource, key_id, annotations) over the plugin's socket.
/// </summary>
public interface IDekSourceDecryptor
{
    /// <summary>The DEK source (seed or key); the caller zeroes it.</summary>
    /// <exception cref="Core.Errors.KmsPluginException">The plugin refused or failed; the message says why.</exception>
    Task<byte[]> DecryptAsync(EncryptedObject encryptedObject, CancellationToken cancellationToken);
}
