using Grpc.Core;
using KmsPlugin.Client;
using KmsPlugin.Core.Errors;
using KmsPlugin.Protocol.V2;
using KmsPlugin.Storage.Audit;
using KmsPlugin.Storage.V2;

namespace KmsPlugin.Cli;

/// <summary>
/// <c>audit --verify</c>'s Decrypt: the stored object's encryptedDEKSource, key_id and annotations sent to the plugin
/// over its socket exactly as kube-apiserver sends them on a DEK cache miss (kmsv2-protocol.md section 2.3).
/// </summary>
public sealed class PluginDekSourceDecryptor(ApiserverEmulator apiserver) : IDekSourceDecryptor
{
    public async Task<byte[]> DecryptAsync(EncryptedObject encryptedObject, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(encryptedObject);
        cancellationToken.ThrowIfCancellationRequested();
        var stored = new EncryptResponse { Ciphertext = encryptedObject.EncryptedDEKSource, KeyId = encryptedObject.KeyID };
        stored.Annotations.Add(encryptedObject.Annotations);
        try
        {
            return await apiserver.DecryptAsync(stored);
        }
        catch (RpcException e)
        {
            var kind = e.StatusCode switch
            {
                StatusCode.InvalidArgument => KmsErrorKind.InvalidRequest,
                StatusCode.DataLoss => KmsErrorKind.Corruption,
                StatusCode.FailedPrecondition => KmsErrorKind.UnknownKeyId,
                StatusCode.ResourceExhausted => KmsErrorKind.Throttled,
                StatusCode.DeadlineExceeded => KmsErrorKind.DeadlineExceeded,
                StatusCode.Unavailable => KmsErrorKind.RootKeyUnavailable,
                _ => KmsErrorKind.Internal,
            };
            throw new KmsPluginException(kind, $"Decrypt returned {e.StatusCode}: {e.Status.Detail}", e);
        }
    }
}
