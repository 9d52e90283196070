using BenchmarkDotNet.Attributes;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Benchmarks;

/// <summary>
/// The KEK cache: a hit (the hot Decrypt path), and a miss that unwraps through an in-process root key (the local
/// AES-GCM file key) — the cache's own cost plus KEK set-up, without any remote latency; the restart storm measures
/// misses against a remote root key.
/// </summary>
[MemoryDiagnoser]
public class KekCacheBenchmarks
{
    private static readonly TimeSpan FlightTimeout = TimeSpan.FromSeconds(10);
    private BenchKeys _keys = null!;
    private KekCache _cache = null!;
    private KekCacheKey _hitKey;
    private LocalKek _template = null!;
    private Func<CancellationToken, Task<LocalKek>> _unwrap = null!;
    private Func<CancellationToken, Task<LocalKek>> _neverCalled = null!;
    private ulong _missCounter;

    [GlobalSetup]
    public void Setup()
    {
        _keys = new BenchKeys();
        _cache = new KekCache(1000);
        var hot = _keys.NewKek();
        _hitKey = hot.CacheKey;
        _cache.Add(hot);
        hot.Release();

        _template = _keys.NewKek();
        var rootKeyWrap = WrappedKekAnnotation.RootKeyWrap(_template.WrappedBlob);
        var associatedData = WrappedKekAnnotation.WrapAssociatedData(_keys.KeyId);
        _neverCalled = _ => throw new InvalidOperationException("a cache hit must not unwrap");
        _unwrap = async token =>
        {
            var secret = await _keys.RootKey.UnwrapAsync(rootKeyWrap, associatedData, token);
            // A distinct cache key per miss (as distinct wrapped blobs would have), so every call misses.
            var key = new KekCacheKey(_keys.KeyId, new Hash256(Interlocked.Increment(ref _missCounter), 0, 0, 0));
            return new LocalKek(secret, key, _template.WrappedBlob, DateTimeOffset.UtcNow);
        };
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _cache.Dispose();
        _template.Release();
        _keys.Dispose();
    }

    /// <summary>What every hot Decrypt does: a synchronous lookup that allocates nothing.</summary>
    [Benchmark(Description = "KEK cache hit")]
    public void Hit()
    {
        if (!_cache.TryGetCached(_hitKey, out var kek))
        {
            throw new InvalidOperationException("the hot KEK is not cached");
        }

        kek.Release();
    }

    /// <summary>A hit that comes through the asynchronous miss path (a request that raced a flight); for comparison.</summary>
    [Benchmark(Description = "KEK cache hit via GetOrUnwrapAsync")]
    public void HitThroughFlightPath()
    {
        var kek = _cache.GetOrUnwrapAsync(_hitKey, _neverCalled, FlightTimeout, CancellationToken.None).GetAwaiter().GetResult();
        kek.Release();
    }

    [Benchmark(Description = "KEK cache miss (local unwrap)")]
    public async Task Miss()
    {
        var key = new KekCacheKey(_keys.KeyId, new Hash256(Interlocked.Read(ref _missCounter) + 1, 0, 0, 0));
        var kek = await _cache.GetOrUnwrapAsync(key, _unwrap, FlightTimeout, CancellationToken.None);
        kek.Release();
    }
}
