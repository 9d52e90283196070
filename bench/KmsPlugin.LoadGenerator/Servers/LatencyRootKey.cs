using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.LoadGenerator.Servers;

/// <summary>
/// A root key "across the network": the configured key (its real wrap/unwrap and key_id) behind an injected round-trip
/// latency, every call counted. Installed through ServerDependencies.DecorateRootKey, the seam the plugin offers for
/// exactly this, so the envelope core, cache and transport under test are the shipped ones.
/// </summary>
internal sealed class LatencyRootKey(IRootKey inner, TimeSpan latency, RemoteCallCounter counter) : IRootKey
{
    public string Name => inner.Name;

    public string Provider => inner.Provider;

    public string KeyId => inner.KeyId;

    public async Task<byte[]> WrapAsync(ReadOnlyMemory<byte> kek, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
    {
        counter.BeginWrap();
        try
        {
            await Task.Delay(latency, cancellationToken);
            return await inner.WrapAsync(kek, associatedData, cancellationToken);
        }
        finally
        {
            counter.End();
        }
    }

    public async Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
    {
        counter.BeginUnwrap();
        try
        {
            await Task.Delay(latency, cancellationToken);
            return await inner.UnwrapAsync(wrapped, associatedData, cancellationToken);
        }
        finally
        {
            counter.End();
        }
    }

    public void Dispose() => inner.Dispose();
}
