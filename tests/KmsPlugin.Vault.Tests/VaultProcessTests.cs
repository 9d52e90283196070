using System.Security.Cryptography;
using KmsPlugin.Client;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Vault.Tests;

/// <summary>
/// The real <c>kms-plugin serve</c> process with a Vault root key: SIGTERM while a Decrypt is waiting on a slow Transit
/// unwrap lets that call finish, then removes the socket and exits 0 — what kubelet's stop of the static pod does.
/// </summary>
public sealed class VaultProcessTests : IAsyncLifetime
{
    private VaultPluginBed _bed = null!;

    public async Task InitializeAsync() => _bed = await VaultPluginBed.StartAsync();

    public async Task DisposeAsync() => await _bed.DisposeAsync();

    [Fact]
    public async Task Sigterm_lets_an_in_flight_remote_unwrap_finish_then_removes_the_socket_and_exits_0()
    {
        var seed = RandomNumberGenerator.GetBytes(32);
        Protocol.V2.EncryptResponse stored;
        await using (var writer = await _bed.StartPluginAsync())
        {
            stored = await writer.Apiserver.EncryptAsync(seed); // a KEK the process below has never seen
        }

        var socket = _bed.Directory.FilePath("kms-plugin.sock");
        var config = _bed.Directory.FilePath("kms-plugin.yaml");
        await File.WriteAllTextAsync(config, $"listen: unix://{socket}\nrootKeys:\n{_bed.RootKeyYaml()}\n");
        await using var plugin = PluginProcess.Start(_bed.Directory.Path, null, "serve", "--config", config);
        await plugin.WaitUntilServingAsync(socket);

        _bed.Vault.Fault = new FakeFault(FaultKind.None, "decrypt", latency: TimeSpan.FromMilliseconds(700)); // under the entry's 1 s networkTimeout
        using var channel = UnixSocketChannel.Create(socket);
        var apiserver = new ApiserverEmulator(channel, TimeSpan.FromSeconds(10));
        var decryptsBefore = _bed.Vault.Calls("decrypt");
        var inFlight = apiserver.DecryptAsync(stored);
        while (_bed.Vault.Calls("decrypt") == decryptsBefore && !inFlight.IsCompleted)
        {
            await Task.Delay(10); // until the unwrap has reached Vault
        }

        plugin.Signal("TERM");

        Assert.Equal(seed, await inFlight);
        Assert.Equal(0, await plugin.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.False(File.Exists(socket), "the socket is removed on the way out");
    }
}
