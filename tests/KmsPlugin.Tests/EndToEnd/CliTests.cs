using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.EndToEnd;

/// <summary>The kms-plugin executable as an operator meets it: help, exit codes, clear configuration errors.</summary>
public sealed class CliTests
{
    [Theory]
    [InlineData("--help")]
    [InlineData("serve", "--help")]
    [InlineData("status", "--help")]
    [InlineData("probe", "--help")]
    [InlineData("doctor", "--help")]
    [InlineData("version", "--help")]
    public async Task Help_is_available_everywhere(params string[] args)
    {
        using var dir = new TempDirectory();
        var (exit, output) = await PluginProcess.RunAsync(dir.Path, null, args);
        Assert.Equal(0, exit);
        Assert.Contains("Usage: kms-plugin", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("frobnicate")]
    [InlineData("serve")]
    [InlineData("serve", "--config")]
    [InlineData("serve", "--pin", "1234")]
    [InlineData("serve", "--dev", "--config", "x.yaml")]
    [InlineData("probe")]
    [InlineData("probe", "--listen", "unix:///tmp/x.sock", "--timeout", "soon")]
    public async Task Wrong_usage_exits_2_with_help(params string[] args)
    {
        using var dir = new TempDirectory();
        var (exit, output) = await PluginProcess.RunAsync(dir.Path, null, args);
        Assert.Equal(2, exit);
        Assert.Contains("kms-plugin", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_config_file_exits_2_naming_the_field()
    {
        using var dir = new TempDirectory();
        var config = dir.FilePath("config.yaml");
        await File.WriteAllTextAsync(config, $"listen: unix://{dir.FilePath("k.sock")}\nkek: {{ maxAge: forever }}\nrootKeys: [{{ name: dev, provider: local, local: {{ keyFile: k }} }}]\n");
        var (exit, output) = await PluginProcess.RunAsync(dir.Path, null, "serve", "--config", config);
        Assert.Equal(2, exit);
        Assert.Contains("configuration error: kek.maxAge: must be a duration", output, StringComparison.Ordinal);
        Assert.False(File.Exists(dir.FilePath("k.sock")));
    }

    [Fact]
    public async Task A_missing_config_file_exits_2()
    {
        using var dir = new TempDirectory();
        var (exit, output) = await PluginProcess.RunAsync(dir.Path, null, "serve", "--config", dir.FilePath("nope.yaml"));
        Assert.Equal(2, exit);
        Assert.Contains("cannot read", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_root_key_that_cannot_be_opened_exits_1_with_the_reason()
    {
        using var dir = new TempDirectory();
        var config = dir.FilePath("config.yaml");
        await File.WriteAllTextAsync(config, $"listen: unix://{dir.FilePath("k.sock")}\nrootKeys: [{{ name: dev, provider: local, local: {{ keyFile: missing.key }} }}]\n");
        var (exit, output) = await PluginProcess.RunAsync(dir.Path, null, "serve", "--config", config);
        Assert.Equal(1, exit);
        Assert.Contains("missing.key does not exist", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_dev_then_probe_passes_and_status_reports_ok()
    {
        using var dir = new TempDirectory();
        await using var plugin = PluginProcess.Start(dir.Path, null, "serve", "--dev");
        var socket = dir.FilePath("kms-plugin.sock");
        await plugin.WaitUntilServingAsync(socket);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(dir.FilePath("kms-plugin-dev-root.key")));
        var (probeExit, probeOutput) = await PluginProcess.RunAsync(dir.Path, null, "probe", "--listen", "unix://" + socket);
        Assert.True(probeExit == 0, probeOutput);
        Assert.Contains("probe: OK", probeOutput, StringComparison.Ordinal);
        Assert.Contains("key_id matches Status", probeOutput, StringComparison.Ordinal);

        var (statusExit, statusOutput) = await PluginProcess.RunAsync(dir.Path, null, "status", "--listen", "unix://" + socket);
        Assert.Equal(0, statusExit);
        Assert.Contains("healthz: ok", statusOutput, StringComparison.Ordinal);
        Assert.Contains("DEVELOPMENT MODE", plugin.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Probe_of_a_socket_where_nothing_listens_fails_clearly()
    {
        using var dir = new TempDirectory();
        var (exit, output) = await PluginProcess.RunAsync(dir.Path, null, "probe", "--listen", "unix://" + dir.FilePath("none.sock"), "--timeout", "1s");
        Assert.Equal(1, exit);
        Assert.Contains($"no socket at {dir.FilePath("none.sock")}: is the plugin running", output, StringComparison.Ordinal);
        (exit, output) = await PluginProcess.RunAsync(dir.Path, null, "status", "--listen", "unix://" + dir.FilePath("none.sock"));
        Assert.Equal(1, exit);
        Assert.Contains("no socket at", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Probe_of_a_stale_socket_where_nothing_listens_fails_with_Unavailable()
    {
        using var dir = new TempDirectory();
        // Bound, never listening: connecting is refused, as with the file a crash leaves (.NET removes the file on
        // dispose, so it stays open for the test).
        using var stale = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        stale.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(dir.FilePath("stale.sock")));

        var (exit, output) = await PluginProcess.RunAsync(dir.Path, null, "probe", "--listen", "unix://" + dir.FilePath("stale.sock"), "--timeout", "5s");
        Assert.Equal(1, exit);
        Assert.Contains("call failed: Unavailable", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_with_its_health_port_taken_exits_1_with_one_clear_line()
    {
        using var dir = new TempDirectory();
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        File.WriteAllText(dir.FilePath("c.yaml"), $"listen: unix://{dir.FilePath("k.sock")}\nhealth: {{ listen: 127.0.0.1:{port} }}\n"
            + "rootKeys: [{ name: dev, provider: local, local: { keyFile: k.key, create: true } }]\n");
        var (exit, output) = await PluginProcess.RunAsync(dir.Path, null, "serve", "--config", dir.FilePath("c.yaml"));
        Assert.Equal(1, exit);
        Assert.Contains($"kms-plugin serve: cannot listen: ", output, StringComparison.Ordinal);
        Assert.Contains($"health.listen 127.0.0.1:{port}", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
        Assert.False(File.Exists(dir.FilePath("k.sock")), "the socket is not left behind");
    }
}
