using System.Diagnostics.CodeAnalysis;

namespace KmsPlugin.Core.Envelope;

/// <summary>
/// A bounded LRU of unwrapped KEKs keyed by <see cref="KekCacheKey"/>, with single-flight unwrap: however many
/// requests miss on the same KEK at once, exactly one root-key unwrap runs and all of them share its result.
/// This is what turns an apiserver restart storm (one Decrypt per stored seed) into one remote call per KEK.
/// Evicted KEKs are released, and zeroed once no request still uses them.
/// </summary>
internal sealed class KekCache : IDisposable
{
    private readonly int _capacity;
    private readonly Lock _lock = new();
    private readonly Dictionary<KekCacheKey, LinkedListNode<LocalKek>> _entries = [];
    private readonly LinkedList<LocalKek> _lru = new();
    private readonly Dictionary<KekCacheKey, Task<LocalKek>> _inflight = [];
    private long _hits;
    private long _misses;
    private long _unwraps;
    private long _evictions;

    public KekCache(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _capacity = capacity;
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    public KekCacheStatistics Statistics => new(Interlocked.Read(ref _hits), Interlocked.Read(ref _misses),
        Interlocked.Read(ref _unwraps), Interlocked.Read(ref _evictions), Count);

    /// <summary>Adds a KEK the plugin just made (so its own seals decrypt without a remote call).</summary>
    public void Add(LocalKek kek)
    {
        lock (_lock)
        {
            InsertLocked(kek);
        }
    }

    /// <summary>
    /// The hot path: an acquired KEK when it is cached (the caller must <see cref="LocalKek.Release"/> it), without
    /// allocating; false on a miss, which the caller then resolves with <see cref="GetOrUnwrapAsync"/>.
    /// </summary>
    public bool TryGetCached(KekCacheKey key, [NotNullWhen(true)] out LocalKek? kek)
    {
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var node) && node.Value.TryAcquire())
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                Interlocked.Increment(ref _hits);
                kek = node.Value;
                return true;
            }
        }

        kek = null;
        return false;
    }

    /// <summary>
    /// Returns an acquired KEK (the caller must <see cref="LocalKek.Release"/> it), unwrapping on a miss.
    /// <paramref name="unwrap"/> runs at most once per key at a time, under <paramref name="flightTimeout"/> rather than
    /// the first caller's deadline, so one impatient caller does not fail the others; each caller still stops waiting
    /// at its own deadline (<paramref name="cancellationToken"/>).
    /// </summary>
    public async Task<LocalKek> GetOrUnwrapAsync(KekCacheKey key, Func<CancellationToken, Task<LocalKek>> unwrap, TimeSpan flightTimeout,
        CancellationToken cancellationToken)
    {
        // A KEK can be evicted between the flight finishing and this caller acquiring it; then look again.
        for (var attempt = 0; ; attempt++)
        {
            Task<LocalKek> flight;
            lock (_lock)
            {
                if (_entries.TryGetValue(key, out var node) && node.Value.TryAcquire())
                {
                    _lru.Remove(node);
                    _lru.AddFirst(node);
                    Interlocked.Increment(ref _hits);
                    return node.Value;
                }

                if (!_inflight.TryGetValue(key, out flight!))
                {
                    Interlocked.Increment(ref _misses);
                    flight = RunFlightAsync(key, unwrap, flightTimeout);
                    _inflight[key] = flight;
                }
            }

            var kek = await flight.WaitAsync(cancellationToken);
            if (kek.TryAcquire())
            {
                return kek;
            }

            if (attempt > 8)
            {
                throw new InvalidOperationException("KEK cache is too small for the concurrent working set");
            }
        }
    }

    private async Task<LocalKek> RunFlightAsync(KekCacheKey key, Func<CancellationToken, Task<LocalKek>> unwrap, TimeSpan flightTimeout)
    {
        await Task.Yield(); // never run the remote call under the caller's lock or stack
        try
        {
            using var timeout = new CancellationTokenSource(flightTimeout);
            Interlocked.Increment(ref _unwraps);
            var kek = await unwrap(timeout.Token);
            lock (_lock)
            {
                InsertLocked(kek);
                kek.Release(); // the cache now holds the reference the constructor gave
            }

            return kek;
        }
        finally
        {
            lock (_lock)
            {
                _inflight.Remove(key);
            }
        }
    }

    private void InsertLocked(LocalKek kek)
    {
        if (_entries.TryGetValue(kek.CacheKey, out var existing))
        {
            if (ReferenceEquals(existing.Value, kek))
            {
                return;
            }

            _lru.Remove(existing);
            _entries.Remove(kek.CacheKey);
            existing.Value.Release();
        }

        if (!kek.TryAcquire())
        {
            return;
        }

        _entries[kek.CacheKey] = _lru.AddFirst(kek);
        while (_entries.Count > _capacity)
        {
            var oldest = _lru.Last!;
            _lru.RemoveLast();
            _entries.Remove(oldest.Value.CacheKey);
            Interlocked.Increment(ref _evictions);
            oldest.Value.Release();
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var kek in _lru)
            {
                kek.Release();
            }

            _lru.Clear();
            _entries.Clear();
        }
    }
}

/// <summary>Counters for metrics and tests. Unwraps count root-key calls started by cache misses.</summary>
public readonly record struct KekCacheStatistics(long Hits, long Misses, long Unwraps, long Evictions, int Size);
