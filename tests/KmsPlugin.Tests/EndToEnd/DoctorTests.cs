using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.EndToEnd;

/// <summary><c>kms-plugin doctor</c>: the preflight before an apiserver is pointed at the plugin.</summary>
public sealed class DoctorTests
{
    [Fact]
    public async Task Doctor_on_the_development_config_passes_and_prints_the_key_id_serve_will_report()
    {
        using var dir = new TempDirectory();
        var (exit, output) = await PluginProcess.RunAsync(dir.Path, null, "doctor", "--dev");
        Assert.True(exit == 0, output);
        Assert.Contains("root key dev (local, primary): opened", output, StringComparison.Ordinal);
        Assert.Contains("wrap OK", output, StringComparison.Ordinal);
        Assert.Contains("doctor: OK", output, StringComparison.Ordinal);
        var keyIdLine = output.Split('\n').Single(l => l.StartsWith("key_id:", StringComparison.Ordinal));

        await using var plugin = PluginProcess.Start(dir.Path, null, "serve", "--dev");
        await plugin.WaitUntilServingAsync(dir.FilePath("kms-plugin.sock"));
        var (_, status) = await PluginProcess.RunAsync(dir.Path, null, "status", "--listen", "unix://" + dir.FilePath("kms-plugin.sock"));
        var keyId = status.Split('\n').Single(l => l.StartsWith("key_id:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        Assert.Contains(keyId, keyIdLine, StringComparison.Ordinal);

        var (busyExit, busy) = await PluginProcess.RunAsync(dir.Path, null, "doctor", "--dev");
        Assert.Equal(1, busyExit);
        Assert.Contains("socket:  PROBLEM: listen: another process is already serving", busy, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Doctor_reports_a_root_key_problem_with_its_class_and_exits_1()
    {
        using var dir = new TempDirectory();
        await File.WriteAllBytesAsync(dir.FilePath("root.key"), new byte[32]);
        File.SetUnixFileMode(dir.FilePath("root.key"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        await File.WriteAllTextAsync(dir.FilePath("config.yaml"), $"listen: unix://{dir.FilePath("k.sock")}\nrootKeys: [{{ name: leaky, provider: local, local: {{ keyFile: root.key }} }}]\n");
        var (exit, output) = await PluginProcess.RunAsync(dir.Path, null, "doctor", "--config", "config.yaml");
        Assert.Equal(1, exit);
        Assert.Contains("root key leaky (local, primary): PROBLEM (RootKeyDenied)", output, StringComparison.Ordinal);
        Assert.Contains("doctor: PROBLEMS FOUND", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Doctor_checks_a_SoftHSM2_root_key()
    {
        using var token = SoftHsmToken.Create();
        using var dir = new TempDirectory();
        await File.WriteAllTextAsync(dir.FilePath("config.yaml"), $"""
            listen: unix://{dir.FilePath("k.sock")}
            rootKeys:
              - name: hsm
                provider: pkcs11
                pkcs11:
                  library: {token.Library}
                  tokenLabel: {token.TokenLabel}
                  keyLabel: {token.KeyLabel}
                  pinFile: {token.PinFile}
            """);
        var (exit, output) = await PluginProcess.RunAsync(dir.Path, token.Environment, "doctor", "--config", "config.yaml");
        Assert.True(exit == 0, output);
        Assert.Contains("root key hsm (pkcs11, primary): opened", output, StringComparison.Ordinal);
        Assert.Contains("key_id:  the plugin will report pkcs11-", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Doctor_with_a_bad_config_exits_2_naming_the_field()
    {
        using var dir = new TempDirectory();
        await File.WriteAllTextAsync(dir.FilePath("config.yaml"), "listen: unix:///run/k.sock\nrootKeys: [{ name: x, provider: cloud9 }]\n");
        var (exit, output) = await PluginProcess.RunAsync(dir.Path, null, "doctor", "--config", "config.yaml");
        Assert.Equal(2, exit);
        Assert.Contains("rootKeys[0].provider", output, StringComparison.Ordinal);
    }
}
