namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// The ring in use, swapped atomically by a config reload or a followed key version while calls are in flight: a
/// call reads <see cref="Current"/> once and finishes with that ring. Updates are serialised. Keys that leave the
/// ring are disposed after a grace period (in-flight calls may still be using them), keys that stay are reused.
/// </summary>
public sealed class ActiveRootKeys : IDisposable
{
    private readonly SemaphoreSlim _updates = new(1, 1);
    private readonly TimeProvider _time;
    private readonly TimeSpan _retireAfter;
    private readonly List<Task> _retiring = [];
    private readonly CancellationTokenSource _stopping = new();
    private RootKeyRing _current;
    private bool _disposed;

    public ActiveRootKeys(RootKeyRing initial, TimeProvider? time = null, TimeSpan? retireAfter = null)
    {
        ArgumentNullException.ThrowIfNull(initial);
        _current = initial;
        _time = time ?? TimeProvider.System;
        _retireAfter = retireAfter ?? TimeSpan.FromMinutes(1);
    }

    public RootKeyRing Current => Volatile.Read(ref _current);

    /// <summary>Raised after a new ring is in place (outside the update lock's critical work; handlers must be quick).</summary>
    public event Action<RootKeyRing, RootKeyRing>? Changed;

    /// <summary>
    /// Runs <paramref name="update"/> with the current ring, alone; a non-null result replaces it, and the keys of
    /// the old ring that the new one does not hold are disposed after the grace period.
    /// </summary>
    public async Task<RootKeyRing?> UpdateAsync(Func<RootKeyRing, CancellationToken, Task<RootKeyRing?>> update, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(update);
        await _updates.WaitAsync(cancellationToken);
        RootKeyRing previous, next;
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            previous = Current;
            var result = await update(previous, cancellationToken);
            if (result is null || ReferenceEquals(result, previous))
            {
                return null;
            }

            next = result;
            Volatile.Write(ref _current, next);
            var kept = next.Keys.ToHashSet(ReferenceEqualityComparer.Instance);
            var retired = previous.Keys.Where(k => !kept.Contains(k)).ToList();
            if (retired.Count > 0)
            {
                lock (_retiring)
                {
                    _retiring.RemoveAll(t => t.IsCompleted);
                    _retiring.Add(RetireLaterAsync(retired));
                }
            }
        }
        finally
        {
            _updates.Release();
        }

        Changed?.Invoke(previous, next);
        return next;
    }

    private async Task RetireLaterAsync(List<IRootKey> keys)
    {
        try
        {
            await Task.Delay(_retireAfter, _time, _stopping.Token);
        }
        catch (OperationCanceledException)
        {
            // shutting down: dispose now
        }
        finally
        {
            foreach (var key in keys)
            {
                key.Dispose();
            }
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _stopping.Cancel();
        Task[] retiring;
        lock (_retiring)
        {
            retiring = [.. _retiring];
        }

        Task.WaitAll(retiring);
        Current.Dispose();
        _stopping.Dispose();
        _updates.Dispose();
    }
}
