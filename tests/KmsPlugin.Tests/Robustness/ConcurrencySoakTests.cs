using System.Diagnostics;
using System.Security.Cryptography;
using Grpc.Core;
using KmsPlugin.Protocol.V2;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.Robustness;

/// <summary>
/// One HTTP/2 connection, 256 concurrent streams of mixed Status/Encrypt/Decrypt, for a bounded time (CI: 5 s; set
/// KMS_PLUGIN_SOAK_SECONDS for a long run). Zero errors; managed memory flat after warm-up.
/// </summary>
public sealed class ConcurrencySoakTests
{
    [Fact]
    public async Task Mixed_calls_on_256_streams_of_one_connection_all_succeed_and_memory_stays_flat()
    {
        var seconds = int.TryParse(Environment.GetEnvironmentVariable("KMS_PLUGIN_SOAK_SECONDS"), out var s) && s > 0 ? s : 5;
        await using var plugin = await PluginHost.StartLocalAsync();
        await plugin.WaitForProbeAsync();
        var stored = new List<(byte[] Seed, EncryptResponse Response)>();
        for (var i = 0; i < 64; i++)
        {
            var seed = RandomNumberGenerator.GetBytes(32);
            stored.Add((seed, await plugin.Apiserver.EncryptAsync(seed)));
        }

        long calls = 0;
        var errors = new List<string>();
        async Task RunFor(TimeSpan duration)
        {
            var until = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, 256).Select(async worker =>
            {
                var n = worker;
                while (until.Elapsed < duration)
                {
                    try
                    {
                        switch (n++ % 3)
                        {
                            case 0:
                                Assert.Equal("ok", (await plugin.Apiserver.StatusAsync()).Healthz);
                                break;
                            case 1:
                                await plugin.Apiserver.EncryptAsync(RandomNumberGenerator.GetBytes(32));
                                break;
                            default:
                                var (seed, response) = stored[n % stored.Count];
                                Assert.Equal(seed, await plugin.Apiserver.DecryptAsync(response));
                                break;
                        }

                        Interlocked.Increment(ref calls);
                    }
                    catch (RpcException e)
                    {
                        lock (errors)
                        {
                            errors.Add(e.Status.ToString());
                        }
                    }
                }
            }));
        }

        await RunFor(TimeSpan.FromSeconds(Math.Max(1, seconds / 5)));
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var warm = GC.GetTotalMemory(forceFullCollection: true);
        await RunFor(TimeSpan.FromSeconds(seconds));
        var after = GC.GetTotalMemory(forceFullCollection: true);

        Assert.Empty(errors);
        Assert.True(calls > 256);
        // Flat: no growth proportional to the calls made (tens of thousands); allow generous noise for caches and pools.
        Assert.True(after - warm < 32 * 1024 * 1024, $"managed heap grew from {warm} to {after} bytes over {calls} calls");
    }
}
