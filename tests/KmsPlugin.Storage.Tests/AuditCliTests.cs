using System.Text.Json;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Storage.Tests;

/// <summary><c>kms-plugin audit</c> as an operator runs it: the real executable, its exit codes, stdout and stderr.</summary>
public sealed class AuditCliTests(EtcdFixture fixture) : IClassFixture<EtcdFixture>
{
    [Fact]
    public async Task Audit_has_its_own_help_and_is_listed_in_the_main_help()
    {
        using var dir = new TempDirectory();
        var (exit, help) = await PluginProcess.RunAsync(dir.Path, null, "audit", "--help");
        Assert.True(exit == 0, help);
        Assert.Contains("Usage: kms-plugin audit --etcd-endpoints URLS", help, StringComparison.Ordinal);
        Assert.Contains("--require-key-id ID", help, StringComparison.Ordinal);

        var (_, main) = await PluginProcess.RunAsync(dir.Path, null, "--help");
        Assert.Contains("audit     read etcd", main, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("missing endpoints", "--etcd-endpoints is required")]
    [InlineData("--etcd-endpoints|ftp://x:1", "is not an http(s)://host:port URL")]
    [InlineData("--etcd-endpoints|http://127.0.0.1:1|--require-key-id|k", "--require-key-id needs --resources")]
    [InlineData("--etcd-endpoints|http://127.0.0.1:1|--output|yaml", "--output must be table or json")]
    [InlineData("--etcd-endpoints|http://127.0.0.1:1|--sample|3", "only apply with --verify")]
    [InlineData("--etcd-endpoints|http://127.0.0.1:1|--page-size|0", "--page-size must be a whole number from 1 to 10000")]
    [InlineData("--etcd-endpoints|http://127.0.0.1:1|--cacert|/nonexistent/ca.crt", "need https:// etcd endpoints")]
    public async Task Bad_usage_exits_2_and_says_what_is_wrong(string args, string message)
    {
        using var dir = new TempDirectory();
        var argv = args == "missing endpoints" ? new[] { "audit" } : ["audit", .. args.Split('|')];
        var (exit, output) = await PluginProcess.RunAsync(dir.Path, null, argv);
        Assert.True(exit == 2, output);
        Assert.Contains(message, output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_executable_writes_the_report_to_stdout_and_progress_to_stderr()
    {
        var prefix = "/cli-" + Guid.NewGuid().ToString("N")[..8];
        for (var i = 0; i < 5; i++)
        {
            await fixture.Etcd.PutAsync($"{prefix}/secrets/ns/s{i}", ApiserverStorageWriter.KubernetesObject("s" + i));
        }

        using var dir = new TempDirectory();
        await using var process = PluginProcess.Start(dir.Path, null, "audit", "--etcd-endpoints", fixture.Etcd.Endpoint, "--prefix", prefix, "--output", "json", "--page-size", "2");
        var exit = await process.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, process.Output);

        // PluginProcess merges the streams; the JSON document is the block from the first '{' line to the last '}' line.
        var lines = process.Output.Split('\n');
        var json = string.Join('\n', lines.SkipWhile(l => l != "{").Reverse().SkipWhile(l => l != "}").Reverse());
        var report = JsonDocument.Parse(json).RootElement;
        Assert.Equal(5, report.GetProperty("scanned").GetInt64());
        Assert.True(report.GetProperty("passed").GetBoolean());
        Assert.Contains(lines, l => l.StartsWith("audit: 5 keys under " + prefix + "/", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("audit: scanned 5 keys in", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_unreachable_etcd_exits_1_with_the_reason()
    {
        using var dir = new TempDirectory();
        var (exit, output) = await PluginProcess.RunAsync(dir.Path, null, "audit", "--etcd-endpoints", "http://127.0.0.1:1");
        Assert.True(exit == 1, output);
        Assert.Contains("kms-plugin audit: etcd http://127.0.0.1:1: Unavailable", output, StringComparison.Ordinal);
    }
}
