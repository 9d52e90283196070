using System.Security.Cryptography;
using Grpc.Core;
using KmsPlugin.Configuration;
using KmsPlugin.Hosting;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.EndToEnd;

public sealed class SocketTests
{
    [Fact]
    public async Task The_socket_is_created_0600()
    {
        await using var plugin = await PluginHost.StartLocalAsync();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(plugin.SocketPath));
    }

    [Fact]
    public async Task With_a_socket_group_the_socket_is_0660_and_group_owned()
    {
        await using var plugin = await PluginHost.StartLocalAsync(adjust: c => c with { SocketGroup = "daemon" });
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(plugin.SocketPath));
        var stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%g", plugin.SocketPath]) { RedirectStandardOutput = true })!;
        var gid = (await stat.StandardOutput.ReadToEndAsync()).Trim();
        Assert.Equal(UnixSocketGuard.ResolveGroup("daemon").ToString(System.Globalization.CultureInfo.InvariantCulture), gid);
    }

    [Fact]
    public async Task An_unknown_socket_group_is_a_configuration_error()
    {
        var error = await Assert.ThrowsAsync<ConfigException>(() => PluginHost.StartLocalAsync(adjust: c => c with { SocketGroup = "no-such-group-kms" }));
        Assert.Equal("socketGroup", error.Field);
    }

    [Fact]
    public async Task A_missing_socket_directory_is_created_0750()
    {
        using var dir = new TempDirectory();
        await using var plugin = await PluginHost.StartLocalAsync(dir, adjust: c => c with { SocketPath = dir.FilePath("run/kms.sock") });
        Assert.Equal((UnixFileMode)0b111_101_000, File.GetUnixFileMode(dir.FilePath("run")));
    }

    [Fact]
    public async Task A_world_writable_socket_directory_is_refused()
    {
        using var dir = new TempDirectory();
        Directory.CreateDirectory(dir.FilePath("open"));
        File.SetUnixFileMode(dir.FilePath("open"), (UnixFileMode)0b111_111_111);
        var error = await Assert.ThrowsAsync<ConfigException>(() => PluginHost.StartLocalAsync(dir, adjust: c => c with { SocketPath = dir.FilePath("open/kms.sock") }));
        Assert.Contains("writable by every user", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_regular_file_at_the_socket_path_is_never_deleted()
    {
        using var dir = new TempDirectory();
        await File.WriteAllTextAsync(dir.FilePath("kms.sock"), "precious");
        var error = await Assert.ThrowsAsync<ConfigException>(() => PluginHost.StartLocalAsync(dir, adjust: c => c with { SocketPath = dir.FilePath("kms.sock") }));
        Assert.Contains("not a socket", error.Message, StringComparison.Ordinal);
        Assert.Equal("precious", await File.ReadAllTextAsync(dir.FilePath("kms.sock")));
    }

    [Fact]
    public async Task In_flight_calls_complete_when_the_server_stops()
    {
        var slow = new FakeRootKey("slow");
        using var dir = new TempDirectory();
        var stored = new List<(byte[] Seed, Protocol.V2.EncryptResponse Response)>();
        await using (var writer = await PluginHost.StartLocalAsync(dir, new ServerDependencies { DecorateRootKey = _ => slow }))
        {
            var seed = RandomNumberGenerator.GetBytes(32);
            stored.Add((seed, await writer.Apiserver.EncryptAsync(seed)));
        }

        slow.Latency = TimeSpan.FromMilliseconds(1500);
        var plugin = await PluginHost.StartLocalAsync(dir, new ServerDependencies { DecorateRootKey = _ => slow });
        var inFlight = plugin.Apiserver.DecryptAsync(stored[0].Response); // cold KEK: a 1.5 s unwrap
        await Task.Delay(300);
        var stopping = plugin.App.StopAsync();
        Assert.Equal(stored[0].Seed, await inFlight);
        await stopping;
        Assert.False(File.Exists(plugin.SocketPath));
        await plugin.DisposeAsync();
    }

    [Fact]
    public async Task A_deadline_shorter_than_a_slow_unwrap_returns_deadline_exceeded_and_the_plugin_keeps_serving()
    {
        var slow = new FakeRootKey("slow");
        using var dir = new TempDirectory();
        Protocol.V2.EncryptResponse stored;
        await using (var writer = await PluginHost.StartLocalAsync(dir, new ServerDependencies { DecorateRootKey = _ => slow }))
        {
            stored = await writer.Apiserver.EncryptAsync(RandomNumberGenerator.GetBytes(32));
        }

        slow.Latency = TimeSpan.FromSeconds(60);
        await using var plugin = await PluginHost.StartLocalAsync(dir, new ServerDependencies { DecorateRootKey = _ => slow });
        var hurried = new Client.ApiserverEmulator(plugin.Channel, TimeSpan.FromMilliseconds(300));
        var started = DateTime.UtcNow;
        var error = await Assert.ThrowsAsync<RpcException>(() => hurried.DecryptAsync(stored));
        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(30)); // well before the 60 s unwrap would finish
        Assert.NotNull((await plugin.Apiserver.StatusAsync()).KeyId);
    }
}
