using System.Security.Cryptography;
using Grpc.Core;
using KmsPlugin.Configuration;
using KmsPlugin.Configuration.Providers;
using KmsPlugin.Core.Errors;
using KmsPlugin.Pkcs11;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.EndToEnd;

/// <summary>The plugin with its root key in a real SoftHSM2 token: in-process, and as real processes on two "nodes".</summary>
public sealed class Pkcs11EndToEndTests
{
    private static int LoginAttempts(SoftHsmToken token) =>
        Pkcs11LoginGuard.AttemptCount(Pkcs11ModuleRegistry.ResolvePath(token.Library), token.TokenLabel);

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
    public async Task A_token_deleted_while_serving_keeps_cached_keks_working_reports_why_in_Status_and_never_logs_in()
    {
        var token = SoftHsmToken.TakeExpendable(); // this test deletes it
        using var dir = new TempDirectory();
        var config = ConfigLoader.Parse(ConfigYaml(token, dir.FilePath("kms.sock")), dir.Path) with
        {
            Logging = new LoggingConfig { Level = LogLevel.Warning },
            Health = new HealthConfig { ProbeInterval = TimeSpan.FromMilliseconds(100) }, // probes fast; unhealthy ones too
        };

        // Data sealed by "another node" under a KEK this plugin has never unwrapped: reading it needs the HSM.
        Protocol.V2.EncryptResponse otherNodes;
        await using (var other = await PluginHost.StartAsync(config with { SocketPath = dir.FilePath("other.sock") }))
        {
            otherNodes = await other.Apiserver.EncryptAsync(RandomNumberGenerator.GetBytes(32));
        }

        await using var plugin = await PluginHost.StartAsync(config);
        await plugin.WaitForProbeAsync();
        var seed = RandomNumberGenerator.GetBytes(32);
        var mine = await plugin.Apiserver.EncryptAsync(seed);
        var keyId = (await plugin.Apiserver.StatusAsync()).KeyId;
        var logins = LoginAttempts(token);

        token.DeleteToken();

        // Status turns unhealthy with a reason naming the token and what to do.
        var status = await plugin.Apiserver.StatusAsync();
        for (var i = 0; i < 400 && status.Healthz == "ok"; i++)
        {
            await Task.Delay(25);
            status = await plugin.Apiserver.StatusAsync();
        }

        Assert.Contains($"token '{token.TokenLabel}'", status.Healthz, StringComparison.Ordinal);
        Assert.Contains("restart the plugin", status.Healthz, StringComparison.Ordinal);
        Assert.Equal(keyId, status.KeyId);

        // The cached KEK keeps serving: new writes and reads of data it sealed need no HSM call.
        Assert.Equal(seed, await plugin.Apiserver.DecryptAsync(mine));
        var fresh = RandomNumberGenerator.GetBytes(32);
        var written = await plugin.Apiserver.EncryptAsync(fresh);
        Assert.Equal(keyId, written.KeyId);
        Assert.Equal(fresh, await plugin.Apiserver.DecryptAsync(written));

        // A KEK that must be unwrapped cannot be: Unavailable (the apiserver retries), naming the token; never DataLoss.
        for (var i = 0; i < 5; i++)
        {
            var error = await Assert.ThrowsAsync<RpcException>(() => plugin.Apiserver.DecryptAsync(otherNodes));
            Assert.Equal(StatusCode.Unavailable, error.StatusCode);
            Assert.Contains($"token '{token.TokenLabel}'", error.Status.Detail, StringComparison.Ordinal);
        }

        // Probes kept running (every 100 ms) and calls kept failing, yet no C_Login was attempted.
        Assert.Equal(logins, LoginAttempts(token));
    }

    [Fact]
    public async Task A_wrong_PIN_is_tried_once_however_often_the_plugin_is_started_and_the_token_stays_usable()
    {
        var token = SoftHsmToken.TakeExpendable(); // no other test logs in to it, so the C_Login count is this test's
        using var dir = new TempDirectory();
        var wrongPin = dir.FilePath("wrong.pin");
        await File.WriteAllTextAsync(wrongPin, "0000");
        File.SetUnixFileMode(wrongPin, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var wrong = ConfigLoader.Parse(ConfigYaml(token, dir.FilePath("kms.sock")).Replace(token.PinFile, wrongPin, StringComparison.Ordinal), dir.Path);
        var logins = LoginAttempts(token);

        var errors = new List<KmsPluginException>();
        for (var i = 0; i < 3; i++)
        {
            errors.Add(await Assert.ThrowsAsync<KmsPluginException>(() => PluginHost.StartAsync(wrong)));
        }

        Assert.All(errors, e => Assert.Equal(KmsErrorKind.RootKeyDenied, e.Kind));
        Assert.All(errors, e => Assert.Contains("CKR_PIN_INCORRECT", e.Message, StringComparison.Ordinal));
        Assert.All(errors, e => Assert.DoesNotContain("0000", e.Message, StringComparison.Ordinal));
        Assert.Equal(logins + 1, LoginAttempts(token));

        await using var plugin = await PluginHost.StartAsync(ConfigLoader.Parse(ConfigYaml(token, dir.FilePath("kms.sock")), dir.Path));
        await plugin.WaitForProbeAsync();
        await ApiserverEmulationTests.AssertApiserverConversationAsync(plugin.Apiserver);
        Assert.Equal(logins + 2, LoginAttempts(token));
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
