using System.Diagnostics;
using KmsPlugin.LoadGenerator.Scenarios;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Bench.Tests;

/// <summary>
/// Runs <c>kms-plugin-bench</c> (the real executable, in a child process, as bench/README.md runs it) with parameters
/// measured in seconds, and checks what it did from its JSON report: every call answered correctly, and the
/// remote-call counts the design promises. Never timings: the machine is shared and benchmarks measure.
/// </summary>
public sealed class LoadGeneratorSmokeTests
{
    private static readonly string Bench = Path.Combine(AppContext.BaseDirectory, "kms-plugin-bench.dll");

    private static async Task<BenchReport> RunAsync(params string[] args)
    {
        using var directory = new TempDirectory();
        var json = directory.FilePath("report.json");
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = directory.Path,
        };
        start.ArgumentList.Add(Bench);
        foreach (var arg in args.Append("--json").Append(json))
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start dotnet");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        var output = await stdout + await stderr;
        Assert.True(process.ExitCode == 0, $"kms-plugin-bench {string.Join(' ', args)} exited with {process.ExitCode}:\n{output}");
        return Report.ReadJson(json);
    }

    [Fact]
    public async Task The_load_generator_drives_the_plugin_and_the_no_op_ceiling_with_every_call_answered()
    {
        var report = await RunAsync("load", "--duration", "1s", "--warmup", "200ms", "--streams", "8");
        var load = Assert.IsType<LoadReport>(report.Load);

        Assert.Equal(
            [("Status", "noop"), ("Status", "plugin"), ("Encrypt", "noop"), ("Encrypt", "plugin"), ("Decrypt", "noop"), ("Decrypt", "plugin")],
            load.Rows.Select(r => (r.Method, r.Target)));
        Assert.All(load.Rows, row =>
        {
            Assert.True(row.Calls > 0, $"{row.Method} against {row.Target} made no call");
            Assert.Equal(0, row.Errors);
            Assert.NotNull(row.CpuMicrosPerCall);
        });
        Assert.Equal(["Status", "Encrypt", "Decrypt"], load.Ratios.Select(r => r.Method));
        Assert.True(load.PluginRssIdleBytes > 0);
        Assert.True(load.PluginRssUnderLoadBytes > 0);
    }

    [Fact]
    public async Task The_restart_storm_costs_one_unwrap_per_KEK_in_KEK_mode_and_one_per_seed_in_direct_mode()
    {
        const int seeds = 300;
        const int keks = 6;
        var report = await RunAsync("storm", "--seeds", $"{seeds}", "--keks", $"{keks}", "--latency", "5ms", "--concurrency", "32");
        var storm = Assert.IsType<StormReport>(report.Storm);

        var kek = Assert.Single(storm.Rows, r => r.Mode == "kek");
        Assert.Equal(keks, kek.DistinctKeks);
        Assert.Equal(keks, kek.RemoteUnwraps); // exactly one unwrap per distinct KEK, however many concurrent requests
        Assert.Equal(0, kek.RemoteWraps);
        Assert.Equal(0, kek.Errors);

        var direct = Assert.Single(storm.Rows, r => r.Mode == "direct");
        Assert.Equal(0, direct.DistinctKeks);
        Assert.Equal(seeds, direct.RemoteUnwraps);
        Assert.Equal(0, direct.RemoteWraps);
        Assert.Equal(0, direct.Errors);
    }

    [Fact]
    public async Task Status_makes_no_remote_call_in_steady_state()
    {
        var report = await RunAsync("status-cost", "--calls", "1000", "--streams", "16", "--latency", "5ms");
        var cost = Assert.IsType<StatusCostReport>(report.StatusCost);
        Assert.Equal(1000, cost.Calls);
        Assert.Equal(0, cost.Errors);
        Assert.Equal(0, cost.RemoteCalls);
    }

    [Fact]
    public async Task The_process_figures_come_from_a_real_plugin_process()
    {
        var report = await RunAsync("startup", "--runs", "1", "--settle", "200ms");
        var startup = Assert.IsType<StartupReport>(report.Startup);
        Assert.Equal(1, startup.Runs);
        Assert.True(startup.MedianReadyMs > 0);
        Assert.True(startup.MedianIdleRssBytes > 0);
    }
}
