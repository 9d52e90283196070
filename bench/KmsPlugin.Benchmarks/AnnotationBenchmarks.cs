using BenchmarkDotNet.Attributes;
using KmsPlugin.Core.Envelope;

namespace KmsPlugin.Benchmarks;

/// <summary>
/// The wrapped-KEK annotation: encode (once per KEK rotation) and decode (every Decrypt: version check, the root
/// key's wrap inside it, and the SHA-256 that ties it to the ciphertext's KEK reference and keys the cache).
/// </summary>
[MemoryDiagnoser]
public class AnnotationBenchmarks
{
    private BenchKeys _keys = null!;
    private byte[] _rootKeyWrap = null!;
    private byte[] _annotation = null!;

    [GlobalSetup]
    public void Setup()
    {
        _keys = new BenchKeys();
        var kek = _keys.NewKek();
        _annotation = kek.WrappedBlob;
        _rootKeyWrap = WrappedKekAnnotation.RootKeyWrap(_annotation).ToArray();
        kek.Release();
    }

    [GlobalCleanup]
    public void Cleanup() => _keys.Dispose();

    [Benchmark(Description = "annotation encode")]
    public byte[] Encode() => WrappedKekAnnotation.Encode(_rootKeyWrap);

    [Benchmark(Description = "annotation decode + hash")]
    public ulong Decode()
    {
        var wrap = WrappedKekAnnotation.RootKeyWrap(_annotation);
        return (ulong)wrap.Length ^ Hash256.Of(_annotation).A;
    }
}
