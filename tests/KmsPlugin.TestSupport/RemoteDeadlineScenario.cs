using System.Security.Cryptography;
using Grpc.Core;
using KmsPlugin.Client;
using Xunit;

namespace KmsPlugin.TestSupport;

/// <summary>
/// A remote root key slower than the apiserver's deadline, the same for every provider: the uncached Decrypt gets
/// DeadlineExceeded at the apiserver's deadline (not at the remote's pace), healthz stays ok, cached KEKs keep serving,
/// and once the remote answers in time again the stored seed decrypts.
/// </summary>
public static class RemoteDeadlineScenario
{
    /// <param name="start">Starts a plugin on the provider's configuration, after its first probe.</param>
    /// <param name="slowDown">Makes the remote's unwrap (decrypt) answer after tens of seconds.</param>
    /// <param name="recover">Makes it answer normally again.</param>
    public static async Task RunAsync(Func<Task<PluginHost>> start, Action slowDown, Action recover)
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(slowDown);
        ArgumentNullException.ThrowIfNull(recover);
        var seed = RandomNumberGenerator.GetBytes(32);
        Protocol.V2.EncryptResponse stored;
        await using (var writer = await start())
        {
            stored = await writer.Apiserver.EncryptAsync(seed); // a KEK the plugin below must unwrap remotely
        }

        await using var plugin = await start();
        var cachedSeed = RandomNumberGenerator.GetBytes(32);
        var cached = await plugin.Apiserver.EncryptAsync(cachedSeed);

        slowDown();
        var impatient = new ApiserverEmulator(plugin.Channel, TimeSpan.FromMilliseconds(300));
        var error = await Assert.ThrowsAsync<RpcException>(() => impatient.DecryptAsync(stored));
        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);

        // Meanwhile: healthy, and cached KEKs serve both ways.
        Assert.Equal("ok", (await plugin.Apiserver.StatusAsync()).Healthz);
        Assert.Equal(cachedSeed, await plugin.Apiserver.DecryptAsync(cached));
        Assert.Equal(cachedSeed, await plugin.Apiserver.DecryptAsync(await plugin.Apiserver.EncryptAsync(cachedSeed)));

        // The remote answers again: the unwrap still in flight ends at its network timeout and the next attempt succeeds.
        recover();
        Assert.Equal(seed, await plugin.Apiserver.DecryptAsync(stored));
    }
}
