using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Protocol.V2;

namespace KmsPlugin.Grpc;

/// <summary>
/// The KMS v2 service (/v2.KeyManagementService/*): a thin adapter from protobuf to <see cref="EnvelopeService"/>.
/// Validation lives in the envelope core, error mapping in <see cref="ErrorMappingInterceptor"/>.
/// </summary>
public sealed class KeyManagementGrpcService(EnvelopeService envelope, RootKeyHealthMonitor health, StatusVersion statusVersion)
    : KeyManagementService.KeyManagementServiceBase
{
    /// <summary>Served from memory: no remote call, whatever the polling rate (kmsv2-protocol.md section 2.2).</summary>
    public override Task<StatusResponse> Status(StatusRequest request, ServerCallContext context) =>
        Task.FromResult(new StatusResponse
        {
            Version = statusVersion.Value,
            Healthz = health.Current.Healthz,
            KeyId = envelope.CurrentKeyId,
        });

    public override async Task<EncryptResponse> Encrypt(EncryptRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        EncryptResult result;
        try
        {
            result = await envelope.EncryptAsync(request.Plaintext.Memory, context.CancellationToken);
        }
        finally
        {
            // The seed is the apiserver's secret: zero our copy of it as soon as it is sealed.
            CryptographicOperations.ZeroMemory(MemoryMarshal.AsMemory(request.Plaintext.Memory).Span);
        }

        var response = new EncryptResponse
        {
            Ciphertext = UnsafeByteOperations.UnsafeWrap(result.Ciphertext),
            KeyId = result.KeyId,
        };
        for (var i = 0; i < result.Annotations.Count; i++) // indexed: foreach over the interface would allocate an enumerator
        {
            var (key, value) = result.Annotations[i];
            response.Annotations.Add(key, UnsafeByteOperations.UnsafeWrap(value));
        }

        return response;
    }

    public override async Task<DecryptResponse> Decrypt(DecryptRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var annotations = new KeyValuePair<string, ReadOnlyMemory<byte>>[request.Annotations.Count];
        var i = 0;
        foreach (var (key, value) in request.Annotations)
        {
            annotations[i++] = new(key, value.Memory);
        }

        var plaintext = await envelope.DecryptAsync(request.Ciphertext.Memory, request.KeyId, annotations, context.CancellationToken);

        // The response is serialized after this method returns; zero the seed once it has been sent.
        // A static callback with the seed as state: no closure to allocate on every call.
        context.GetHttpContext().Response.OnCompleted(static seed =>
        {
            CryptographicOperations.ZeroMemory((byte[])seed);
            return Task.CompletedTask;
        }, plaintext);
        return new DecryptResponse { Plaintext = UnsafeByteOperations.UnsafeWrap(plaintext) };
    }
}

/// <summary>The configured StatusResponse.version, fixed at start: the apiserver fails the check if it ever changes.</summary>
public sealed record StatusVersion(string Value);
