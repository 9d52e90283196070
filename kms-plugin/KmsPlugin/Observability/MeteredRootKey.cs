using System.Diagnostics;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Observability;

/// <summary>
/// Counts and times every call a root key makes to its backend (<c>kms_plugin_root_key_requests_total</c> and
/// <c>_duration_seconds</c> by provider, operation and outcome). It sits directly around the provider's key, so
/// every remote call is seen whoever makes it: the envelope core's wraps and unwraps, and the health probe's canary.
/// Everything else is forwarded unchanged, including the default-implemented members of <see cref="IRootKey"/>
/// (a decorator that did not forward them would silently use the interface's default instead of the provider's).
/// </summary>
public sealed class MeteredRootKey(IRootKey inner, PluginMetrics metrics) : IRootKey
{
    public const string Wrap = "wrap";
    public const string Unwrap = "unwrap";
    public const string ReadVersion = "read_version";

    /// <summary>
    /// <paramref name="key"/> metered, or unchanged when there are no metrics (one-shot commands such as doctor). A key
    /// whose backend has versions stays an <see cref="IVersionedRootKey"/>, so version following still finds it.
    /// </summary>
    public static IRootKey Decorate(IRootKey key, PluginMetrics? metrics)
    {
        ArgumentNullException.ThrowIfNull(key);
        return metrics is null ? key
            : key is IVersionedRootKey versioned ? new MeteredVersionedRootKey(versioned, metrics)
            : new MeteredRootKey(key, metrics);
    }

    /// <summary>The provider's key.</summary>
    public IRootKey Inner => inner;

    public string Name => inner.Name;

    public string Provider => inner.Provider;

    public string KeyId => inner.KeyId;

    public Task<byte[]> WrapAsync(ReadOnlyMemory<byte> kek, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken) =>
        MeasureAsync(Wrap, token => inner.WrapAsync(kek, associatedData, token), cancellationToken);

    public Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken) =>
        MeasureAsync(Unwrap, token => inner.UnwrapAsync(wrapped, associatedData, token), cancellationToken);

    public bool Recognizes(string keyId, ReadOnlySpan<byte> wrapped) => inner.Recognizes(keyId, wrapped);

    public void Dispose() => inner.Dispose();

    /// <summary>Runs one remote call of <paramref name="operation"/> and records its outcome and duration, whatever happens.</summary>
    internal async Task<T> MeasureAsync<T>(string operation, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        T result;
        try
        {
            result = await call(cancellationToken);
        }
        catch (Exception e)
        {
            metrics.RecordRootKeyCall(inner.Provider, operation, RootKeyOutcomes.Of(e, cancellationToken), Stopwatch.GetElapsedTime(started));
            throw;
        }

        metrics.RecordRootKeyCall(inner.Provider, operation, RootKeyOutcomes.Ok, Stopwatch.GetElapsedTime(started));
        return result;
    }
}
