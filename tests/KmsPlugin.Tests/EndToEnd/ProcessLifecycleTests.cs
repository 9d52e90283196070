using System.Security.Cryptography;
using KmsPlugin.Client;
using KmsPlugin.Protocol.V2;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.EndToEnd;

/// <summary>Restarts, crashes, a second control-plane node and SIGTERM, with the real executable.</summary>
public sealed class ProcessLifecycleTests
{
    internal static async Task<List<(byte[] Seed, EncryptResponse Stored)>> EncryptSomeAsync(string socket, int count)
    {
        using var channel = UnixSocketChannel.Create(socket);
        var apiserver = new ApiserverEmulator(channel, TimeSpan.FromSeconds(10));
        var stored = new List<(byte[], EncryptResponse)>();
        for (var i = 0; i < count; i++)
        {
            var seed = RandomNumberGenerator.GetBytes(32);
            stored.Add((seed, await apiserver.EncryptAsync(seed)));
        }

        return stored;
    }

    internal static async Task AssertAllDecryptAsync(string socket, IEnumerable<(byte[] Seed, EncryptResponse Stored)> stored)
    {
        using var channel = UnixSocketChannel.Create(socket);
        var apiserver = new ApiserverEmulator(channel, TimeSpan.FromSeconds(10));
        var status = await apiserver.StatusAsync();
        foreach (var (seed, response) in stored)
        {
            Assert.Equal(status.KeyId, response.KeyId);
            Assert.Equal(seed, await apiserver.DecryptAsync(response));
        }
    }

    [Fact]
    public async Task Ciphertexts_survive_kill_9_and_restart_and_decrypt_on_a_second_node()
    {
        using var node1 = new TempDirectory();
        using var node2 = new TempDirectory();
        List<(byte[], EncryptResponse)> stored;
        await using (var first = PluginProcess.Start(node1.Path, null, "serve", "--dev"))
        {
            await first.WaitUntilServingAsync(node1.FilePath("kms-plugin.sock"));
            stored = await EncryptSomeAsync(node1.FilePath("kms-plugin.sock"), 5);
            first.Signal("KILL");
            Assert.NotEqual(0, await first.WaitForExitAsync(TimeSpan.FromSeconds(10)));
        }

        Assert.True(File.Exists(node1.FilePath("kms-plugin.sock")), "kill -9 leaves the socket behind; the restart must cope");
        await using (var restarted = PluginProcess.Start(node1.Path, null, "serve", "--dev"))
        {
            await restarted.WaitUntilServingAsync(node1.FilePath("kms-plugin.sock"));
            Assert.Contains("removed stale socket", restarted.Output, StringComparison.Ordinal);
            await AssertAllDecryptAsync(node1.FilePath("kms-plugin.sock"), stored);
        }

        // Another control-plane node with the same root key (the dev key file copied there).
        File.Copy(node1.FilePath("kms-plugin-dev-root.key"), node2.FilePath("kms-plugin-dev-root.key"));
        await using var second = PluginProcess.Start(node2.Path, null, "serve", "--dev");
        await second.WaitUntilServingAsync(node2.FilePath("kms-plugin.sock"));
        await AssertAllDecryptAsync(node2.FilePath("kms-plugin.sock"), stored);
    }

    [Fact]
    public async Task Sigterm_exits_0_and_removes_the_socket()
    {
        using var dir = new TempDirectory();
        await using var plugin = PluginProcess.Start(dir.Path, null, "serve", "--dev");
        var socket = dir.FilePath("kms-plugin.sock");
        await plugin.WaitUntilServingAsync(socket);
        plugin.Signal("TERM");
        Assert.Equal(0, await plugin.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        Assert.False(File.Exists(socket));
    }

    [Fact]
    public async Task A_second_plugin_on_a_live_socket_refuses_to_start()
    {
        using var dir = new TempDirectory();
        await using var plugin = PluginProcess.Start(dir.Path, null, "serve", "--dev");
        await plugin.WaitUntilServingAsync(dir.FilePath("kms-plugin.sock"));
        var (exit, output) = await PluginProcess.RunAsync(dir.Path, null, "serve", "--dev");
        Assert.Equal(2, exit);
        Assert.Contains("another process is already serving", output, StringComparison.Ordinal);
        Assert.Equal("ok", (await new ApiserverEmulator(UnixSocketChannel.Create(dir.FilePath("kms-plugin.sock")), TimeSpan.FromSeconds(10)).StatusAsync()).Healthz);
    }

    [Fact]
    public async Task Everything_acknowledged_before_a_kill_9_mid_traffic_decrypts_after_restart()
    {
        using var dir = new TempDirectory();
        var socket = dir.FilePath("kms-plugin.sock");
        var acknowledged = new System.Collections.Concurrent.ConcurrentBag<(byte[], EncryptResponse)>();
        await using (var plugin = PluginProcess.Start(dir.Path, null, "serve", "--dev"))
        {
            await plugin.WaitUntilServingAsync(socket);
            using var channel = UnixSocketChannel.Create(socket);
            var apiserver = new ApiserverEmulator(channel, TimeSpan.FromSeconds(10));
            using var stop = new CancellationTokenSource();
            var writers = Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var seed = RandomNumberGenerator.GetBytes(32);
                    try
                    {
                        acknowledged.Add((seed, await apiserver.EncryptAsync(seed)));
                    }
                    catch (global::Grpc.Core.RpcException)
                    {
                        return; // the process died under this call: it was never acknowledged
                    }
                }
            })).ToArray();
            await Task.Delay(700);
            plugin.Signal("KILL");
            await plugin.WaitForExitAsync(TimeSpan.FromSeconds(10));
            stop.Cancel();
            await Task.WhenAll(writers);
        }

        Assert.NotEmpty(acknowledged);
        await using var restarted = PluginProcess.Start(dir.Path, null, "serve", "--dev");
        await restarted.WaitUntilServingAsync(socket);
        await AssertAllDecryptAsync(socket, acknowledged);
    }
}
