using Net.Pkcs11Interop.HighLevelAPI;

namespace KmsPlugin.Pkcs11;

/// <summary>
/// A bounded pool of PKCS#11 sessions for one root key.
/// </summary>
/// <remarks>
/// A PKCS#11 session runs one cryptographic operation at a time (v2.40 section 5.1: C_EncryptInit on a busy session
/// is CKR_OPERATION_ACTIVE), so each call rents a session for its Init+Encrypt/Decrypt pair and returns it. The
/// pool opens sessions lazily up to <c>size</c> (HSMs limit sessions per partition, so the bound matters), reuses
/// them, and drops any the caller reports broken so the next renter gets a fresh one. Waiting for a session
/// honours the caller's CancellationToken: that is how the apiserver's gRPC deadline reaches the HSM queue.
/// </remarks>
internal sealed class Pkcs11SessionPool : IDisposable
{
    private readonly SemaphoreSlim _permits;
    private readonly Func<ISession> _open;
    private readonly Lock _gate = new();
    private readonly Stack<ISession> _idle = new();
    private bool _disposed;

    /// <param name="size">The most sessions open (and HSM calls in flight) at once.</param>
    /// <param name="open">Opens a ready-to-use (logged-in) session; may throw KmsPluginException.</param>
    public Pkcs11SessionPool(int size, Func<ISession> open)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        _permits = new SemaphoreSlim(size, size);
        _open = open;
    }

    /// <summary>Waits for a free slot (cancellable), then hands out an idle session or opens one.</summary>
    public async ValueTask<ISession> RentAsync(CancellationToken cancellationToken)
    {
        await _permits.WaitAsync(cancellationToken);
        return TakeOrOpen();
    }

    /// <summary>Synchronous rent, for construction only (no contention then).</summary>
    public ISession Rent()
    {
        _permits.Wait();
        return TakeOrOpen();
    }

    /// <summary>Gives a rented session back; <paramref name="broken"/> closes it instead of keeping it.</summary>
    public void Return(ISession session, bool broken)
    {
        ArgumentNullException.ThrowIfNull(session);
        var close = broken;
        lock (_gate)
        {
            if (!broken && !_disposed)
            {
                _idle.Push(session);
            }
            else
            {
                close = true;
            }
        }

        if (close)
        {
            Pkcs11Sessions.CloseQuietly(session);
        }

        _permits.Release();
    }

    /// <summary>Idle sessions kept for reuse (for tests).</summary>
    internal int IdleCount
    {
        get
        {
            lock (_gate)
            {
                return _idle.Count;
            }
        }
    }

    /// <summary>
    /// Closes every idle session. Called when one session of the token turned out dead (token removed, device
    /// error, every session closed): the idle ones died with it, and handing them out one by one would fail one
    /// apiserver call per pooled session before the pool heals. Rented sessions come back through
    /// <see cref="Return"/> and are judged by their own renter.
    /// </summary>
    public void DiscardIdle()
    {
        List<ISession> idle;
        lock (_gate)
        {
            idle = [.. _idle];
            _idle.Clear();
        }

        foreach (var session in idle)
        {
            Pkcs11Sessions.CloseQuietly(session);
        }
    }

    /// <summary>
    /// Closes the idle sessions. The owner calls this only once nothing is rented any more (Pkcs11RootKey counts
    /// calls in flight), so no session outlives the pool.
    /// </summary>
    public void Dispose()
    {
        List<ISession> idle;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            idle = [.. _idle];
            _idle.Clear();
        }

        foreach (var session in idle)
        {
            Pkcs11Sessions.CloseQuietly(session);
        }

        _permits.Dispose();
    }

    private ISession TakeOrOpen()
    {
        try
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_idle.TryPop(out var session))
                {
                    return session;
                }
            }

            return _open();
        }
        catch
        {
            _permits.Release();
            throw;
        }
    }
}
