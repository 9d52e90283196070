using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using Microsoft.Extensions.Logging.Abstractions;

namespace KmsPlugin.Benchmarks;

/// <summary>
/// The envelope core's hot path: Encrypt under the current KEK and Decrypt of a seed whose KEK is cached — what every
/// apiserver call costs the plugin beyond gRPC. Neither makes a root-key call.
/// </summary>
[MemoryDiagnoser]
public class EnvelopeServiceBenchmarks
{
    private BenchKeys _keys = null!;
    private EnvelopeService _envelope = null!;
    private byte[] _seed = null!;
    private EncryptResult _stored = null!;
    private KeyValuePair<string, ReadOnlyMemory<byte>>[] _annotations = null!;

    [GlobalSetup]
    public void Setup()
    {
        _keys = new BenchKeys();
        _envelope = new EnvelopeService(new RootKeyRing([_keys.RootKey]), new EnvelopeOptions(), TimeProvider.System, CsprngRandomSource.Instance,
            NullLogger.Instance);
        _seed = RandomNumberGenerator.GetBytes(32);
        _stored = _envelope.EncryptAsync(_seed, CancellationToken.None).GetAwaiter().GetResult();
        _annotations = [.. _stored.Annotations.Select(a => new KeyValuePair<string, ReadOnlyMemory<byte>>(a.Key, a.Value))];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _envelope.Dispose();
        _keys.Dispose();
    }

    [Benchmark(Description = "EnvelopeService.Encrypt (hot)")]
    public Task<EncryptResult> Encrypt() => _envelope.EncryptAsync(_seed, CancellationToken.None);

    [Benchmark(Description = "EnvelopeService.Decrypt (KEK cached)")]
    public Task<byte[]> Decrypt() => _envelope.DecryptAsync(_stored.Ciphertext, _stored.KeyId, _annotations, CancellationToken.None);
}
