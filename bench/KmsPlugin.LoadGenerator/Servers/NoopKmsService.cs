using Google.Protobuf;
using Grpc.Core;
using KmsPlugin.Protocol.V2;

namespace KmsPlugin.LoadGenerator.Servers;

/// <summary>
/// The ceiling: the same KMS v2 service (/v2.KeyManagementService/*) answering constants, with messages the size of
/// the plugin's (a 77-byte ciphertext, a 38-character key_id, one 61-byte annotation, a 32-byte seed), so the only
/// difference from the plugin is the plugin's own work.
/// </summary>
internal sealed class NoopKmsService : KeyManagementService.KeyManagementServiceBase
{
    private const string KeyId = "local-00000000000000000000000000000000";

    private static readonly Task<StatusResponse> StatusAnswer = Task.FromResult(new StatusResponse { Version = "v2", Healthz = "ok", KeyId = KeyId });

    private static readonly Task<EncryptResponse> EncryptAnswer = Task.FromResult(NewEncryptResponse());

    private static readonly Task<DecryptResponse> DecryptAnswer = Task.FromResult(new DecryptResponse { Plaintext = ByteString.CopyFrom(new byte[32]) });

    public override Task<StatusResponse> Status(StatusRequest request, ServerCallContext context) => StatusAnswer;

    public override Task<EncryptResponse> Encrypt(EncryptRequest request, ServerCallContext context) => EncryptAnswer;

    public override Task<DecryptResponse> Decrypt(DecryptRequest request, ServerCallContext context) => DecryptAnswer;

    private static EncryptResponse NewEncryptResponse()
    {
        var response = new EncryptResponse { Ciphertext = ByteString.CopyFrom(new byte[77]), KeyId = KeyId };
        response.Annotations.Add("kek.kmsplugin.io", ByteString.CopyFrom(new byte[61]));
        return response;
    }
}
