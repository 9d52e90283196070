using System.Security.Cryptography;
using Grpc.Core;
using KmsPlugin.Client;
using KmsPlugin.Configuration;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Hosting;
using KmsPlugin.Protocol.V2;
using KmsPlugin.TestSupport;
using Xunit.Abstractions;

namespace KmsPlugin.Tests.EndToEnd;

/// <summary>
/// Rotation without restart (issue 4): the configuration file changes under a running plugin while a client keeps
/// encrypting and decrypting through the socket.
/// </summary>
public sealed class LiveRotationTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly List<IDisposable> _traffic = [];

    private string ConfigPath => _dir.FilePath("kms-plugin.yaml");

    private string SocketPath => _dir.FilePath("kms.sock");

    /// <summary>Writes the configuration with local root keys named by <paramref name="keys"/> (name, role) in order.</summary>
    private void WriteConfig(params (string Name, string? Role)[] keys) => WriteConfig(watch: true, keys);

    private int? _healthPort;

    private void WriteConfig(bool watch, params (string Name, string? Role)[] keys)
    {
        var entries = string.Join("", keys.Select(k => $"""

              - name: {k.Name}
                provider: local
            {(k.Role is null ? "" : $"    role: {k.Role}\n")}    local:
                  keyFile: {k.Name}.key
                  create: true
            """));
        File.WriteAllText(ConfigPath, $"""
            listen: unix://{SocketPath}
            stateDirectory: state
            reload:
              watch: {(watch ? "true" : "false")}
              pollInterval: 1s
            logging:
              level: warning
            {(_healthPort is { } port ? $"health:\n  listen: 127.0.0.1:{port}\n" : "")}rootKeys:{entries}

            """);
    }

    private Task<PluginHost> StartAsync(ServerDependencies? dependencies = null) =>
        PluginHost.StartAsync(ConfigLoader.LoadFile(ConfigPath), dependencies);

    private static Task<ConfigReloadOutcome> ReloadAsync(PluginHost plugin) =>
        plugin.App.Services.GetRequiredService<ConfigReloader>().ReloadAsync(CancellationToken.None);

    private async Task<(ApiserverTraffic Traffic, string Before, string After)> RotateUnderTrafficAsync(PluginHost plugin, Action rewrite)
    {
        var before = (await plugin.Apiserver.StatusAsync()).KeyId;
        var traffic = new ApiserverTraffic(plugin.Apiserver, clients: 4);
        _traffic.Add(traffic);
        traffic.Start();
        await traffic.WaitForCallsAsync(200);
        rewrite();
        Assert.Equal(ConfigReloadOutcome.Applied, await ReloadAsync(plugin));
        var atReload = traffic.Calls;
        await traffic.WaitForCallsAsync(atReload + 200);
        await traffic.StopAsync();
        var after = (await plugin.Apiserver.StatusAsync()).KeyId;
        output.WriteLine($"{traffic.Calls} Encrypt+Decrypt pairs, {traffic.Failures.Count} failures; key_id {KeyIdHash(before)} -> {KeyIdHash(after)}");
        return (traffic, before, after);
    }

    private static string KeyIdHash(string keyId) => Core.Security.KeyIdHash.Of(keyId);

    private async Task AssertEverythingDecryptsAfterRestartAsync(ApiserverTraffic traffic, ServerDependencies? dependencies = null)
    {
        await using var restarted = await StartAsync(dependencies);
        await traffic.AssertAllDecryptAsync(restarted.Apiserver);
    }

    [Fact]
    public async Task Changing_the_primary_on_a_running_plugin_fails_no_call_and_changes_the_key_id_once()
    {
        WriteConfig(("alpha", null));
        ApiserverTraffic traffic;
        await using (var plugin = await StartAsync())
        {
            string before, after;
            (traffic, before, after) = await RotateUnderTrafficAsync(plugin, () => WriteConfig(("bravo", null), ("alpha", "decrypt-only")));
            traffic.AssertKeyIdChangedOnce(before, after);
            Assert.Equal("bravo", plugin.Ring.Primary.Name);

            // Status and Encrypt agree after the change.
            Assert.Equal(after, (await plugin.Apiserver.EncryptAsync(RandomNumberGenerator.GetBytes(32))).KeyId);
        }

        await AssertEverythingDecryptsAfterRestartAsync(traffic);
    }

    [Fact]
    public async Task Changing_the_primary_while_an_additional_wrap_root_key_is_unreachable_fails_no_call()
    {
        WriteConfig(("alpha", null), ("escrow", "additional-wrap"));
        var switchboard = new RootKeySwitchboard();
        var dependencies = new ServerDependencies { DecorateRootKey = switchboard.Decorate };
        ApiserverTraffic traffic;
        await using (var plugin = await StartAsync(dependencies))
        {
            switchboard.Break("escrow");
            string before, after;
            (traffic, before, after) = await RotateUnderTrafficAsync(plugin,
                () => WriteConfig(("bravo", null), ("escrow", "additional-wrap"), ("alpha", "decrypt-only")));
            traffic.AssertKeyIdChangedOnce(before, after);
            Assert.True(switchboard.Wraps("escrow") > 0, "the escrow key was asked to wrap the new KEK");
        }

        await AssertEverythingDecryptsAfterRestartAsync(traffic);
    }

    [Fact]
    public async Task Data_wrapped_with_an_additional_root_key_decrypts_when_the_primary_is_lost()
    {
        WriteConfig(("alpha", null), ("escrow", "additional-wrap"));
        var seed = RandomNumberGenerator.GetBytes(32);
        EncryptResponse stored;
        await using (var plugin = await StartAsync())
        {
            stored = await plugin.Apiserver.EncryptAsync(seed);
        }

        // The primary's region is down: a fresh plugin (nothing cached) still decrypts through the escrow wrap.
        var switchboard = new RootKeySwitchboard();
        switchboard.Break("alpha");
        await using (var plugin = await StartAsync(new ServerDependencies { DecorateRootKey = switchboard.Decorate }))
        {
            Assert.Equal(seed, await plugin.Apiserver.DecryptAsync(stored));
            Assert.Equal(1, switchboard.Unwraps("escrow"));
        }

        // The primary is gone for good: migrated to the escrow key on the same socket, no second plugin.
        WriteConfig(("escrow", null));
        await using (var plugin = await StartAsync())
        {
            Assert.Equal(seed, await plugin.Apiserver.DecryptAsync(stored));
        }
    }

    [Fact]
    public async Task A_root_key_removed_by_a_reload_is_refused_for_Decrypt_with_a_clear_error()
    {
        WriteConfig(("alpha", null));
        await using var plugin = await StartAsync();
        var stored = await plugin.Apiserver.EncryptAsync(RandomNumberGenerator.GetBytes(32));
        await plugin.Apiserver.DecryptAsync(stored); // its KEK is cached

        WriteConfig(("bravo", null));
        Assert.Equal(ConfigReloadOutcome.Applied, await ReloadAsync(plugin));
        var e = await Assert.ThrowsAsync<RpcException>(() => plugin.Apiserver.DecryptAsync(stored));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("add it back as a decrypt-only entry", e.Status.Detail, StringComparison.Ordinal);

        WriteConfig(("bravo", null), ("alpha", "decrypt-only"));
        Assert.Equal(ConfigReloadOutcome.Applied, await ReloadAsync(plugin));
        await plugin.Apiserver.DecryptAsync(stored);
    }

    [Fact]
    public async Task A_broken_or_restart_only_reload_is_rejected_and_the_old_configuration_keeps_serving()
    {
        _healthPort = FreeTcpPort.Next();
        WriteConfig(("alpha", null));
        await using var plugin = await StartAsync();
        var keyId = (await plugin.Apiserver.StatusAsync()).KeyId;
        var reloader = plugin.App.Services.GetRequiredService<ConfigReloader>();

        File.WriteAllText(ConfigPath, "rootKeys: [ {name: alpha, provider: local");
        Assert.Equal(ConfigReloadOutcome.Rejected, await ReloadAsync(plugin));
        Assert.Equal(ConfigReloadOutcome.Unchanged, await ReloadAsync(plugin)); // the same broken file is not re-applied on every poll

        File.WriteAllText(ConfigPath, File.ReadAllText(ConfigPath).Replace("local", "nonsense", StringComparison.Ordinal) + "]}]");
        Assert.Equal(ConfigReloadOutcome.Rejected, await ReloadAsync(plugin));

        WriteConfig(("bravo", null));
        File.AppendAllText(ConfigPath, "statusVersion: v2beta1\n");
        Assert.Equal(ConfigReloadOutcome.Rejected, await ReloadAsync(plugin));

        Assert.Equal(keyId, (await plugin.Apiserver.StatusAsync()).KeyId);
        await ApiserverEmulationTests.AssertApiserverConversationAsync(plugin.Apiserver);
        Assert.Equal(3, reloader.RejectedCount);
        Assert.Equal(0, reloader.AppliedCount);
        var scrape = await PrometheusScrape.GetAsync(_healthPort.Value);
        Assert.Equal(3, scrape.Sum("kms_plugin_config_reloads_total", ("outcome", "rejected")));
        Assert.Equal(0, scrape.Sum("kms_plugin_config_reloads_total", ("outcome", "applied")));

        WriteConfig(("bravo", null));
        Assert.Equal(ConfigReloadOutcome.Applied, await ReloadAsync(plugin));
        var applied = (await plugin.Apiserver.StatusAsync()).KeyId;
        Assert.NotEqual(keyId, applied);

        // A comment is a change of the file, not of the configuration.
        File.AppendAllText(ConfigPath, "# reviewed\n");
        Assert.Equal(ConfigReloadOutcome.Unchanged, await ReloadAsync(plugin));
        Assert.Equal(applied, (await plugin.Apiserver.StatusAsync()).KeyId);
        Assert.Equal(1, reloader.AppliedCount);
        scrape = await PrometheusScrape.GetAsync(_healthPort.Value);
        Assert.Equal(1, scrape.Sum("kms_plugin_config_reloads_total", ("outcome", "applied")));
        Assert.Equal(1, scrape.Sum("kms_plugin_config_reloads_total", ("outcome", "unchanged")));
    }

    [Fact]
    public async Task Going_back_to_an_earlier_primary_reports_a_new_key_id_even_across_a_restart()
    {
        WriteConfig(("alpha", null));
        string first, second, third;
        await using (var plugin = await StartAsync())
        {
            first = (await plugin.Apiserver.StatusAsync()).KeyId;
            WriteConfig(("bravo", null), ("alpha", "decrypt-only"));
            await ReloadAsync(plugin);
            second = (await plugin.Apiserver.StatusAsync()).KeyId;
        }

        WriteConfig(("alpha", null), ("bravo", "decrypt-only"));
        await using (var plugin = await StartAsync())
        {
            third = (await plugin.Apiserver.StatusAsync()).KeyId;
            Assert.Equal(third, (await plugin.Apiserver.EncryptAsync(RandomNumberGenerator.GetBytes(32))).KeyId);
        }

        // doctor names the key_id the plugin will report, epoch included, and writes nothing.
        var history = File.ReadAllBytes(Path.Combine(_dir.Path, "state", KeyIdHistory.FileName));
        using var doctor = new StringWriter();
        Assert.Equal(0, await Cli.DoctorCommand.RunAsync(ConfigLoader.LoadFile(ConfigPath), ConfigPath, doctor));
        Assert.Contains($"the plugin will report {third} ", doctor.ToString(), StringComparison.Ordinal);
        Assert.Contains("state:   ", doctor.ToString(), StringComparison.Ordinal);
        Assert.Equal(history, File.ReadAllBytes(Path.Combine(_dir.Path, "state", KeyIdHistory.FileName)));

        Assert.Equal(3, new[] { first, second, third }.Distinct().Count());
        Assert.Equal(first, KeyIdEpoch.BaseOf(third));
        Assert.True(File.Exists(Path.Combine(_dir.Path, "state", KeyIdHistory.FileName)));
    }

    [Fact]
    public async Task A_new_primary_that_cannot_wrap_is_rejected_before_anything_changes()
    {
        WriteConfig(("alpha", null));
        var switchboard = new RootKeySwitchboard();
        await using var plugin = await StartAsync(new ServerDependencies { DecorateRootKey = switchboard.Decorate });
        var keyId = (await plugin.Apiserver.StatusAsync()).KeyId;
        var history = File.ReadAllBytes(Path.Combine(_dir.Path, "state", KeyIdHistory.FileName));

        switchboard.Break("bravo", new Core.Errors.KmsPluginException(Core.Errors.KmsErrorKind.RootKeyDenied, "test: no permission to encrypt with bravo"));
        WriteConfig(("bravo", null), ("alpha", "decrypt-only"));
        Assert.Equal(ConfigReloadOutcome.Rejected, await ReloadAsync(plugin));
        Assert.Equal(keyId, (await plugin.Apiserver.StatusAsync()).KeyId);
        Assert.Equal(history, File.ReadAllBytes(Path.Combine(_dir.Path, "state", KeyIdHistory.FileName)));
        await ApiserverEmulationTests.AssertApiserverConversationAsync(plugin.Apiserver);

        // Polling the unchanged file does not retry it; once the permission is granted, SIGHUP (force) applies it.
        switchboard.Repair("bravo");
        Assert.Equal(ConfigReloadOutcome.Unchanged, await ReloadAsync(plugin));
        Assert.Equal(ConfigReloadOutcome.Applied,
            await plugin.App.Services.GetRequiredService<ConfigReloader>().ReloadAsync(CancellationToken.None, force: true));
        Assert.NotEqual(keyId, (await plugin.Apiserver.StatusAsync()).KeyId);
    }

    [Fact]
    public async Task A_state_directory_others_can_read_is_refused_at_start()
    {
        WriteConfig(("alpha", null));
        Directory.CreateDirectory(_dir.FilePath("state"));
        File.SetUnixFileMode(_dir.FilePath("state"), (UnixFileMode)0b111_101_101); // 0755
        var e = await Assert.ThrowsAnyAsync<Exception>(() => StartAsync());
        var message = (e.InnerException ?? e).Message;
        Assert.Contains("stateDirectory", message, StringComparison.Ordinal);
        Assert.Contains("chmod 700", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_watcher_applies_an_edited_file_without_being_asked()
    {
        WriteConfig(("alpha", null));
        await using var plugin = await StartAsync();
        var before = (await plugin.Apiserver.StatusAsync()).KeyId;
        WriteConfig(("bravo", null), ("alpha", "decrypt-only"));
        var after = before;
        for (var i = 0; i < 300 && after == before; i++)
        {
            await Task.Delay(50);
            after = (await plugin.Apiserver.StatusAsync()).KeyId;
        }

        Assert.NotEqual(before, after);
    }

    [Fact]
    public async Task The_real_process_reloads_on_SIGHUP_and_keeps_its_socket()
    {
        WriteConfig(watch: false, ("alpha", null));
        await using var process = PluginProcess.Start(_dir.Path, null, "serve", "--config", ConfigPath);
        await process.WaitUntilServingAsync(SocketPath);
        using var channel = UnixSocketChannel.Create(SocketPath);
        var apiserver = new ApiserverEmulator(channel, TimeSpan.FromSeconds(15));
        var before = (await apiserver.StatusAsync()).KeyId;
        var stored = await apiserver.EncryptAsync(RandomNumberGenerator.GetBytes(32));

        // With reload.watch off, nothing but the signal makes the plugin read the file again.
        WriteConfig(watch: false, ("bravo", null), ("alpha", "decrypt-only"));
        await Task.Delay(1500);
        Assert.Equal(before, (await apiserver.StatusAsync()).KeyId);
        process.Signal("HUP");
        var after = before;
        for (var i = 0; i < 300 && after == before; i++)
        {
            await Task.Delay(50);
            after = (await apiserver.StatusAsync()).KeyId;
        }

        Assert.NotEqual(before, after);
        Assert.False(process.HasExited);
        await apiserver.DecryptAsync(stored);
        for (var i = 0; i < 100 && !process.Output.Contains("configuration reloaded", StringComparison.Ordinal); i++)
        {
            await Task.Delay(50); // the console logger writes from its own queue
        }

        Assert.Contains("configuration reloaded", process.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_remotely_moved_key_version_is_followed_after_stable_probes_without_a_failed_call()
    {
        // One entry, versionless: the backend's version moves and the plugin follows it through its decorators
        // (circuit breaker, metering) exactly as a Vault, Azure or GCP key would.
        WriteConfig(("alpha", null));
        File.AppendAllText(ConfigPath, "rotation:\n  stableProbes: 2\n");
        var backend = new FakeVersionedBackend();
        var dependencies = new ServerDependencies { DecorateRemote = key => new FakeVersionedRootKey(backend, key.Name, "1") };
        var plugin = await StartAsync(dependencies);
        var follower = plugin.App.Services.GetRequiredService<RootKeyVersionFollower>();
        for (var i = 0; i < 600 && follower.Rounds == 0; i++)
        {
            await Task.Delay(10); // the round after the first probe must not count as one of the two below
        }

        Assert.True(follower.Rounds > 0);
        var before = (await plugin.Apiserver.StatusAsync()).KeyId;
        var traffic = new ApiserverTraffic(plugin.Apiserver, clients: 4);
        _traffic.Add(traffic);
        traffic.Start();
        await traffic.WaitForCallsAsync(100);

        backend.LatestVersion = "2";
        await follower.ObserveAsync(CancellationToken.None);
        Assert.Equal(before, (await plugin.Apiserver.StatusAsync()).KeyId); // seen once: not yet
        await follower.ObserveAsync(CancellationToken.None);
        var after = (await plugin.Apiserver.StatusAsync()).KeyId;
        var atChange = traffic.Calls;
        await traffic.WaitForCallsAsync(atChange + 100);
        await traffic.StopAsync();

        traffic.AssertKeyIdChangedOnce(before, after);
        await plugin.DisposeAsync();

        // A fresh plugin that starts at version 2 still decrypts what version 1 wrapped, with one entry.
        backend.LatestVersion = "2";
        var fresh = new ServerDependencies { DecorateRemote = key => new FakeVersionedRootKey(backend, key.Name, "2") };
        await using var restarted = await StartAsync(fresh);
        await traffic.AssertAllDecryptAsync(restarted.Apiserver);
    }

    public void Dispose()
    {
        _traffic.ForEach(t => t.Dispose());
        _dir.Dispose();
    }
}
