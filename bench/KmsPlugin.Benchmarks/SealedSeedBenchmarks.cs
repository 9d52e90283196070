using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Benchmarks;

/// <summary>Seal and open of the apiserver's 32-byte seed under a local KEK (AES-256-GCM, AAD binding key_id).</summary>
[MemoryDiagnoser]
public class SealedSeedBenchmarks
{
    private BenchKeys _keys = null!;
    private LocalKek _kek = null!;
    private byte[] _seed = null!;
    private byte[] _sealed = null!;

    [GlobalSetup]
    public void Setup()
    {
        _keys = new BenchKeys();
        _kek = _keys.NewKek();
        _seed = RandomNumberGenerator.GetBytes(32);
        _sealed = SealedSeedFormat.Seal(_kek, _seed, CsprngRandomSource.Instance);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _kek.Release();
        _keys.Dispose();
    }

    [Benchmark(Description = "seal 32-byte seed")]
    public byte[] Seal() => SealedSeedFormat.Seal(_kek, _seed, CsprngRandomSource.Instance);

    [Benchmark(Description = "open 32-byte seed")]
    public byte[] Open() => SealedSeedFormat.Open(_kek, _sealed);
}
