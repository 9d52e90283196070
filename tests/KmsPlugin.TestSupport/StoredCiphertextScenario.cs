using System.Security.Cryptography;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Protocol.V2;
using Xunit;

namespace KmsPlugin.TestSupport;

/// <summary>
/// A running plugin whose own KEK is cached, plus a ciphertext written by an earlier plugin instance whose KEK this
/// one has never unwrapped: Decrypt of <see cref="Stored"/> must call the root key, Decrypt of <see cref="Cached"/>
/// must not. The situation of a plugin restarted against a backend that is failing, throttling or slow.
/// </summary>
public sealed class StoredCiphertextScenario : IAsyncDisposable
{
    private StoredCiphertextScenario(PluginHost plugin, byte[] storedSeed, EncryptResponse stored, byte[] cachedSeed, EncryptResponse cached)
    {
        Plugin = plugin;
        StoredSeed = storedSeed;
        Stored = stored;
        CachedSeed = cachedSeed;
        Cached = cached;
    }

    public PluginHost Plugin { get; }

    public byte[] StoredSeed { get; }

    /// <summary>Sealed by an earlier instance: its KEK is not in <see cref="Plugin"/>'s cache.</summary>
    public EncryptResponse Stored { get; }

    public byte[] CachedSeed { get; }

    /// <summary>Sealed by <see cref="Plugin"/> itself: its KEK is cached.</summary>
    public EncryptResponse Cached { get; }

    /// <summary>
    /// Starts a writer plugin with <paramref name="configure"/>(), seals <see cref="Stored"/>, stops it; then starts
    /// <see cref="Plugin"/> with <paramref name="configure"/>() again (so each call must give a fresh socket), waits for
    /// its first probe and seals <see cref="Cached"/>.
    /// </summary>
    public static async Task<StoredCiphertextScenario> StartAsync(Func<PluginConfig> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var storedSeed = RandomNumberGenerator.GetBytes(32);
        EncryptResponse stored;
        await using (var writer = await PluginHost.StartAsync(configure()))
        {
            stored = await writer.Apiserver.EncryptAsync(storedSeed);
        }

        var plugin = await PluginHost.StartAsync(configure());
        try
        {
            await plugin.WaitForProbeAsync();
            var cachedSeed = RandomNumberGenerator.GetBytes(32);
            var cached = await plugin.Apiserver.EncryptAsync(cachedSeed);
            return new StoredCiphertextScenario(plugin, storedSeed, stored, cachedSeed, cached);
        }
        catch
        {
            await plugin.DisposeAsync();
            throw;
        }
    }

    /// <summary>The cached KEK still decrypts, and a new Encrypt + Decrypt round trip works (whatever the backend is doing).</summary>
    public async Task AssertCachedTrafficWorksAsync()
    {
        Assert.Equal(CachedSeed, await Plugin.Apiserver.DecryptAsync(Cached));
        var seed = RandomNumberGenerator.GetBytes(32);
        Assert.Equal(seed, await Plugin.Apiserver.DecryptAsync(await Plugin.Apiserver.EncryptAsync(seed)));
    }

    /// <summary>Probes the primary root key now and returns Status's healthz.</summary>
    public async Task<string> ProbeHealthzAsync()
    {
        await Plugin.App.Services.GetRequiredService<RootKeyHealthMonitor>().ProbeOnceAsync(CancellationToken.None);
        return (await Plugin.Apiserver.StatusAsync()).Healthz;
    }

    public ValueTask DisposeAsync() => Plugin.DisposeAsync();
}
