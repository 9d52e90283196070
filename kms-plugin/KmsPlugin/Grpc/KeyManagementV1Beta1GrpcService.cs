using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Protocol.V1Beta1;

namespace KmsPlugin.Grpc;

/// <summary>
/// The deprecated KMS v1 service (/v1beta1.KeyManagementService/*), served beside KMS v2 on the same socket only when
/// <c>kmsV1beta1.enabled</c> is set, for clusters migrating from v1 to v2. A thin adapter from protobuf to
/// <see cref="V1Beta1Envelope"/> (the same KEK hierarchy as v2); error mapping is <see cref="ErrorMappingInterceptor"/>'s.
/// </summary>
public sealed class KeyManagementV1Beta1GrpcService(EnvelopeService envelope) : KeyManagementService.KeyManagementServiceBase
{
    public const string RuntimeName = "kms-plugin";

    /// <summary>VersionResponse.runtime_version, which the proto asks to be semver: the assembly's informational version
    /// (<c>1.0.0+commit</c>, semver build metadata).</summary>
    public static string RuntimeVersion { get; } =
        typeof(KeyManagementV1Beta1GrpcService).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    /// <summary>kube-apiserver calls Version once before its first Encrypt or Decrypt and requires <c>v1beta1</c> back.</summary>
    public override Task<VersionResponse> Version(VersionRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        V1Beta1Envelope.CheckApiVersion(request.Version);
        return Task.FromResult(new VersionResponse { Version = V1Beta1Envelope.ApiVersion, RuntimeName = RuntimeName, RuntimeVersion = RuntimeVersion });
    }

    public override async Task<EncryptResponse> Encrypt(EncryptRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        byte[] cipher;
        try
        {
            V1Beta1Envelope.CheckApiVersion(request.Version);
            cipher = await new V1Beta1Envelope(envelope).EncryptAsync(request.Plain.Memory, context.CancellationToken);
        }
        finally
        {
            // plain is the apiserver's DEK: zero our copy of it as soon as it is sealed (or refused).
            CryptographicOperations.ZeroMemory(MemoryMarshal.AsMemory(request.Plain.Memory).Span);
        }

        return new EncryptResponse { Cipher = UnsafeByteOperations.UnsafeWrap(cipher) };
    }

    public override async Task<DecryptResponse> Decrypt(DecryptRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        V1Beta1Envelope.CheckApiVersion(request.Version);
        var plain = await new V1Beta1Envelope(envelope).DecryptAsync(request.Cipher.Memory, context.CancellationToken);

        // The response is serialized after this method returns; zero the DEK once it has been sent.
        context.GetHttpContext().Response.OnCompleted(static plain =>
        {
            CryptographicOperations.ZeroMemory((byte[])plain);
            return Task.CompletedTask;
        }, plain);
        return new DecryptResponse { Plain = UnsafeByteOperations.UnsafeWrap(plain) };
    }
}
