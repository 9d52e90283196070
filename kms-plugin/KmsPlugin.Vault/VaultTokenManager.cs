using System.Text;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Vault;

/// <summary>
/// Owns the Vault token of one root key: logs in, renews the lease before it runs out, logs in again when renewal
/// fails, and replaces a token Vault refused (403) once.
/// </summary>
/// <remarks>
/// <para>Renewal happens at 2/3 of the lease (HashiCorp's LifetimeWatcher renews in the last third as well): a timer on
/// the injected <see cref="TimeProvider"/> fires then, and every use past that point refreshes too, so the token is
/// renewed even if the timer was late. When renewal fails (token revoked, past its max TTL, Vault restored from a
/// snapshot) or returns a lease that has shrunk below a third of the login's (the max TTL is near), the manager logs in
/// again. If that fails too while the old token is still inside its lease, the old token keeps serving and the refresh
/// is retried shortly: an auth outage must not stop wrap/unwrap while a valid token exists.</para>
/// <para>All refreshes are single-flight: concurrent callers share one login, so a burst of requests (or of 403s)
/// causes one login, not one per request (the renewal race of FalcoSuessgott/vault-kubernetes-kms#304).</para>
/// <para>Method <c>token</c>: the file is the source of truth; it is re-read whenever its size or modification time
/// changes, and after a 403. Its renewal is the writer's job (Vault Agent's auto-auth sink renews and rewrites it).</para>
/// </remarks>
internal sealed class VaultTokenManager : IDisposable
{
    private readonly VaultTransitRootKeyOptions _options;
    private readonly VaultHttpClient _http;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ITimer _renewalTimer;
    private readonly CancellationTokenSource _disposed = new();
    private TokenState? _state;

    public VaultTokenManager(VaultTransitRootKeyOptions options, VaultHttpClient http)
    {
        _options = options;
        _http = http;
        _time = options.Time;
        _renewalTimer = _time.CreateTimer(_ => _ = RefreshInBackgroundAsync(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    private bool FromFile => _options.Auth.Method == VaultAuthMethod.Token;

    /// <summary>A token to use now.</summary>
    public async ValueTask<string> GetTokenAsync(CancellationToken cancellationToken)
    {
        var state = Volatile.Read(ref _state);
        if (state is not null && IsFresh(state))
        {
            return state.Token;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            state = _state;
            if (state is not null && IsFresh(state))
            {
                return state.Token; // another caller refreshed while this one waited
            }

            return await RefreshLockedAsync(state, afterDenial: false, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Vault refused <paramref name="deniedToken"/> with 403. Gets a different token if that can help; false when it
    /// cannot (the token file still holds the same token, or this token came from a login made after a 403 already —
    /// then the policy is the problem, and logging in again would only hammer the auth method).
    /// </summary>
    public async Task<bool> ReplaceDeniedAsync(string deniedToken, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var state = _state;
            if (state is not null && !string.Equals(state.Token, deniedToken, StringComparison.Ordinal))
            {
                return true; // already replaced by a concurrent caller
            }

            if (state is { FromDenial: true })
            {
                return false;
            }

            var fresh = await RefreshLockedAsync(state, afterDenial: true, cancellationToken);
            return !string.Equals(fresh, deniedToken, StringComparison.Ordinal);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>A call with <paramref name="token"/> succeeded: a later 403 may be a revocation worth one more login.</summary>
    public void MarkWorking(string token)
    {
        var state = Volatile.Read(ref _state);
        if (state is { FromDenial: true } && string.Equals(state.Token, token, StringComparison.Ordinal))
        {
            Interlocked.CompareExchange(ref _state, state with { FromDenial = false }, state);
        }
    }

    public void Dispose()
    {
        _disposed.Cancel();
        _renewalTimer.Dispose();
        _disposed.Dispose();
    }

    private bool IsFresh(TokenState state) =>
        FromFile ? state.File == FileStamp.Of(_options.Auth.TokenFile!) : _time.GetUtcNow() < state.RefreshAt;

    private async Task<string> RefreshLockedAsync(TokenState? current, bool afterDenial, CancellationToken cancellationToken)
    {
        if (FromFile)
        {
            return ReadTokenFile(afterDenial).Token;
        }

        var now = _time.GetUtcNow();
        if (!afterDenial && current is { Renewable: true } && now < current.ExpiresAt)
        {
            try
            {
                var renewed = await VaultLogin.RenewSelfAsync(_http, current.Token, _options.Name, cancellationToken);
                if (renewed.Duration >= current.LoginLease / 3)
                {
                    return Publish(new TokenState(renewed.Token, _time.GetUtcNow(), renewed.Duration, renewed.Renewable, current.LoginLease, false, null));
                }

                // The lease shrank: the token is close to its max TTL. A fresh login gives a full lease.
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // Revoked, expired, no longer renewable, or Vault unreachable: try a fresh login below.
            }
        }

        try
        {
            var lease = await LoginWithClassificationAsync(cancellationToken);
            return Publish(new TokenState(lease.Token, _time.GetUtcNow(), lease.Duration, lease.Renewable, lease.Duration, afterDenial, null));
        }
        catch (KmsPluginException) when (!afterDenial && current is not null && _time.GetUtcNow() < current.ExpiresAt)
        {
            // Keep serving with the token that still works; look again soon (well before it expires).
            var remaining = current.ExpiresAt - _time.GetUtcNow();
            var retryIn = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(10).Ticks, remaining.Ticks / 2));
            Publish(current with { RetryAt = _time.GetUtcNow() + retryIn });
            return current.Token;
        }
    }

    private async Task<VaultLease> LoginWithClassificationAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await VaultLogin.LoginAsync(_http, _options, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            throw VaultErrorClassifier.ToException(_options.Name, VaultOperation.Login, e);
        }
    }

    private TokenState ReadTokenFile(bool afterDenial)
    {
        var path = _options.Auth.TokenFile!;
        var stamp = FileStamp.Of(path);
        var bytes = SecretFile.Read(path, "auth.tokenFile", _options.Name, privateFile: true);
        string token;
        try
        {
            token = Encoding.UTF8.GetString(bytes);
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(bytes);
        }

        var state = new TokenState(token, _time.GetUtcNow(), TimeSpan.Zero, false, TimeSpan.Zero, afterDenial, stamp);
        Volatile.Write(ref _state, state);
        return state;
    }

    private string Publish(TokenState state)
    {
        Volatile.Write(ref _state, state);
        var due = state.RefreshAt - _time.GetUtcNow();
        if (state.RefreshAt != DateTimeOffset.MaxValue && !_disposed.IsCancellationRequested)
        {
            try
            {
                _renewalTimer.Change(due > TimeSpan.Zero ? due : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // disposed concurrently
            }
        }

        return state.Token;
    }

    private async Task RefreshInBackgroundAsync()
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_disposed.Token);
            timeout.CancelAfter(_options.OpenTimeout);
            await GetTokenAsync(timeout.Token);
        }
        catch (Exception e) when (e is KmsPluginException or OperationCanceledException or ObjectDisposedException)
        {
            // The next use of the token retries and reports the failure to its caller (and so to Status).
        }
    }

    /// <param name="LoginLease">The lease the last login granted; a renewal returning much less means the max TTL is near.</param>
    /// <param name="FromDenial">Obtained because Vault refused the previous token; cleared once a call succeeds with it.</param>
    /// <param name="File">For method token: the file's stamp when it was read.</param>
    private sealed record TokenState(string Token, DateTimeOffset ObtainedAt, TimeSpan Lease, bool Renewable, TimeSpan LoginLease, bool FromDenial,
        FileStamp? File)
    {
        /// <summary>A lease of 0 means the token does not expire (Vault: root or non-expiring tokens).</summary>
        public DateTimeOffset ExpiresAt => Lease <= TimeSpan.Zero ? DateTimeOffset.MaxValue : ObtainedAt + Lease;

        /// <summary>When set, a failed refresh is retried then instead of at 2/3 of the lease.</summary>
        public DateTimeOffset? RetryAt { get; init; }

        public DateTimeOffset RefreshAt => RetryAt ?? (Lease <= TimeSpan.Zero ? DateTimeOffset.MaxValue : ObtainedAt + Lease * 2 / 3);

        public override string ToString() => $"TokenState(lease {Lease}, renewable {Renewable})"; // never the token
    }

    /// <summary>Size and modification time: enough to notice a rewritten token file without reading it on every call.</summary>
    private readonly record struct FileStamp(long Length, DateTime LastWriteUtc)
    {
        public static FileStamp? Of(string path)
        {
            var info = new FileInfo(path);
            return info.Exists ? new FileStamp(info.Length, info.LastWriteTimeUtc) : null;
        }
    }
}
