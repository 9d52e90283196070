using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.Grpc;
using KmsPlugin.Protocol.V2;
using Microsoft.Extensions.Logging.Abstractions;

namespace KmsPlugin.Benchmarks;

/// <summary>
/// The KMS v2 service methods on protobuf messages (KeyManagementGrpcService), without the network: the hot path
/// the plugin adds to every gRPC call. Allocations here are the protobuf messages plus what the plugin adds.
/// </summary>
[MemoryDiagnoser]
public class GrpcServiceBenchmarks
{
    private BenchKeys _keys = null!;
    private EnvelopeService _envelope = null!;
    private KeyManagementGrpcService _service = null!;
    private EncryptRequest _encryptRequest = null!;
    private DecryptRequest _decryptRequest = null!;
    private BenchServerCallContext _encryptContext = null!;
    private BenchServerCallContext _decryptContext = null!;
    private BenchServerCallContext _statusContext = null!;
    private readonly StatusRequest _statusRequest = new();

    [GlobalSetup]
    public void Setup()
    {
        _keys = new BenchKeys();
        var ring = new RootKeyRing([_keys.RootKey]);
        _envelope = new EnvelopeService(ring, new EnvelopeOptions(), TimeProvider.System, CsprngRandomSource.Instance, NullLogger.Instance);
        var health = new RootKeyHealthMonitor(() => ring, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(10), TimeProvider.System, CsprngRandomSource.Instance,
            NullLogger.Instance);
        health.ProbeOnceAsync(CancellationToken.None).GetAwaiter().GetResult();
        _service = new KeyManagementGrpcService(_envelope, health, new StatusVersion("v2"));
        _encryptContext = new BenchServerCallContext("/v2.KeyManagementService/Encrypt");
        _decryptContext = new BenchServerCallContext("/v2.KeyManagementService/Decrypt");
        _statusContext = new BenchServerCallContext("/v2.KeyManagementService/Status");
        _encryptRequest = new EncryptRequest { Plaintext = ByteString.CopyFrom(RandomNumberGenerator.GetBytes(32)), Uid = Guid.NewGuid().ToString() };
        var stored = _service.Encrypt(_encryptRequest, _encryptContext).GetAwaiter().GetResult();
        _decryptRequest = new DecryptRequest { Ciphertext = stored.Ciphertext, KeyId = stored.KeyId, Uid = Guid.NewGuid().ToString() };
        _decryptRequest.Annotations.Add(stored.Annotations);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _envelope.Dispose();
        _keys.Dispose();
    }

    [Benchmark(Description = "gRPC service Status")]
    public Task<StatusResponse> Status() => _service.Status(_statusRequest, _statusContext);

    [Benchmark(Description = "gRPC service Encrypt (hot)")]
    public Task<EncryptResponse> Encrypt() => _service.Encrypt(_encryptRequest, _encryptContext);

    [Benchmark(Description = "gRPC service Decrypt (KEK cached)")]
    public Task<DecryptResponse> Decrypt() => _service.Decrypt(_decryptRequest, _decryptContext);
}
