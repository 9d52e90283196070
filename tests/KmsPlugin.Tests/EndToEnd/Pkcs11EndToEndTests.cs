using System.Security.Cryptography;
using KmsPlugin.Configuration;
using KmsPlugin.Configuration.Providers;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.EndToEnd;

/// <summary>The plugin with its root key in a real SoftHSM2 token: in-process, and as real processes on two "nodes".</summary>
public sealed class Pkcs11EndToEndTests
{
    private static string ConfigYaml(SoftHsmToken token, string socket, string keyLabel = "kek1") => $"""
        listen: unix://{socket}
        rootKeys:
          - name: hsm
            provider: pkcs11
            pkcs11:
              library: {token.Library}
              tokenLabel: {token.TokenLabel}
              keyLabel: {keyLabel}
              pinFile: {token.PinFile}
        """;

    [Fact]
    public async Task Status_encrypt_decrypt_with_a_SoftHSM2_root_key_passes_the_apiservers_checks()
    {
        var token = SoftHsmToken.Shared;
        using var dir = new TempDirectory();
        var config = ConfigLoader.Parse(ConfigYaml(token, dir.FilePath("kms.sock")), dir.Path) with { Logging = new LoggingConfig { Level = LogLevel.Warning } };
        await using var plugin = await PluginHost.StartAsync(config);
        await plugin.WaitForProbeAsync();
        Assert.StartsWith("pkcs11-", (await plugin.Apiserver.StatusAsync()).KeyId, StringComparison.Ordinal);
        await ApiserverEmulationTests.AssertApiserverConversationAsync(plugin.Apiserver);
    }

    [Fact]
    public async Task Data_sealed_under_one_HSM_key_still_decrypts_after_the_primary_moves_to_another()
    {
        var token = SoftHsmToken.Shared;
        using var dir = new TempDirectory();
        var first = ConfigLoader.Parse(ConfigYaml(token, dir.FilePath("kms.sock")), dir.Path);
        var seed = RandomNumberGenerator.GetBytes(32);
        Protocol.V2.EncryptResponse stored;
        await using (var before = await PluginHost.StartAsync(first))
        {
            stored = await before.Apiserver.EncryptAsync(seed);
        }

        var rotated = first with
        {
            RootKeys = [first.RootKeys[0] with { Name = "hsm-new", Settings = first.RootKeys[0].SettingsAs<Pkcs11RootKeyConfig>() with { KeyLabel = "kek2" } }, first.RootKeys[0]],
        };
        await using var after = await PluginHost.StartAsync(rotated);
        var status = await after.Apiserver.StatusAsync();
        Assert.NotEqual(stored.KeyId, status.KeyId);
        Assert.Equal(seed, await after.Apiserver.DecryptAsync(stored));
        Assert.Equal(status.KeyId, (await after.Apiserver.EncryptAsync(seed)).KeyId);
    }

    [Fact]
    public async Task With_SoftHSM2_ciphertexts_survive_kill_9_and_decrypt_on_a_second_node()
    {
        using var token = SoftHsmToken.Create();
        using var node1 = new TempDirectory();
        using var node2 = new TempDirectory();
        await File.WriteAllTextAsync(node1.FilePath("config.yaml"), ConfigYaml(token, node1.FilePath("kms.sock")));
        await File.WriteAllTextAsync(node2.FilePath("config.yaml"), ConfigYaml(token, node2.FilePath("kms.sock")));

        List<(byte[], Protocol.V2.EncryptResponse)> stored;
        await using (var first = PluginProcess.Start(node1.Path, token.Environment, "serve", "--config", "config.yaml"))
        {
            await first.WaitUntilServingAsync(node1.FilePath("kms.sock"));
            stored = await ProcessLifecycleTests.EncryptSomeAsync(node1.FilePath("kms.sock"), 5);

            // another control-plane node on the same HSM, while the first is still running
            await using var second = PluginProcess.Start(node2.Path, token.Environment, "serve", "--config", "config.yaml");
            await second.WaitUntilServingAsync(node2.FilePath("kms.sock"));
            await ProcessLifecycleTests.AssertAllDecryptAsync(node2.FilePath("kms.sock"), stored);

            first.Signal("KILL");
            await first.WaitForExitAsync(TimeSpan.FromSeconds(10));
        }

        await using var restarted = PluginProcess.Start(node1.Path, token.Environment, "serve", "--config", "config.yaml");
        await restarted.WaitUntilServingAsync(node1.FilePath("kms.sock"));
        await ProcessLifecycleTests.AssertAllDecryptAsync(node1.FilePath("kms.sock"), stored);
        Assert.DoesNotContain(await File.ReadAllTextAsync(token.PinFile), restarted.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wrong_PIN_stops_the_plugin_at_start_with_a_clear_error_and_no_PIN_in_the_output()
    {
        using var token = SoftHsmToken.Create();
        using var dir = new TempDirectory();
        var wrongPin = dir.FilePath("wrong.pin");
        await File.WriteAllTextAsync(wrongPin, "0000");
        File.SetUnixFileMode(wrongPin, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await File.WriteAllTextAsync(dir.FilePath("config.yaml"), ConfigYaml(token, dir.FilePath("kms.sock")).Replace(token.PinFile, wrongPin, StringComparison.Ordinal));
        var (exit, output) = await PluginProcess.RunAsync(dir.Path, token.Environment, "serve", "--config", "config.yaml");
        Assert.Equal(1, exit);
        Assert.Contains("PIN", output, StringComparison.Ordinal);
        Assert.DoesNotContain("0000", output, StringComparison.Ordinal);

        // the token is not locked: the right PIN still works
        await File.WriteAllTextAsync(dir.FilePath("config.yaml"), ConfigYaml(token, dir.FilePath("kms.sock")));
        await using var plugin = PluginProcess.Start(dir.Path, token.Environment, "serve", "--config", "config.yaml");
        await plugin.WaitUntilServingAsync(dir.FilePath("kms.sock"));
    }

    [Fact]
    public async Task A_missing_token_stops_the_plugin_naming_the_label()
    {
        using var token = SoftHsmToken.Create();
        using var dir = new TempDirectory();
        await File.WriteAllTextAsync(dir.FilePath("config.yaml"), ConfigYaml(token, dir.FilePath("kms.sock")).Replace("tokenLabel: kms", "tokenLabel: nope", StringComparison.Ordinal));
        var (exit, output) = await PluginProcess.RunAsync(dir.Path, token.Environment, "serve", "--config", "config.yaml");
        Assert.Equal(1, exit);
        Assert.Contains("nope", output, StringComparison.Ordinal);
    }
}
