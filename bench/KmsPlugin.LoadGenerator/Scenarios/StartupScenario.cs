using KmsPlugin.LoadGenerator.Processes;

namespace KmsPlugin.LoadGenerator.Scenarios;

internal sealed record StartupOptions(string Plugin, IReadOnlyDictionary<string, string> PluginEnvironment, int Runs, TimeSpan Settle);

/// <summary>
/// Process figures for <c>kms-plugin serve --dev</c>: time from starting the process to the first answered Status,
/// and resident memory once idle (after the first probe and KEK), over several fresh processes in fresh directories.
/// One untimed run first, so the figures are not the disk cache's.
/// </summary>
internal static class StartupScenario
{
    public static async Task<StartupReport> RunAsync(StartupOptions options, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        var ready = new List<double>();
        var rss = new List<long>();
        for (var run = 0; run <= options.Runs; run++)
        {
            using var directory = new BenchDirectory();
            var socket = directory.FilePath("kms.sock");
            await using var plugin = ChildProcess.Start(ProcessCommand.For(options.Plugin, "serve", "--dev", "--listen", "unix://" + socket).WithEnvironment(options.PluginEnvironment),
                directory.Path);
            try
            {
                var elapsed = await Readiness.WaitAsync(plugin, socket, TimeSpan.FromSeconds(30));
                await Task.Delay(options.Settle);
                if (run > 0)
                {
                    ready.Add(elapsed.TotalMilliseconds);
                    rss.Add(plugin.RssBytes());
                    await log.WriteLineAsync($"startup run {run}: ready in {elapsed.TotalMilliseconds:0} ms, idle RSS {Report.Megabytes(rss[^1])}");
                }
            }
            finally
            {
                await plugin.StopAsync(TimeSpan.FromSeconds(10));
            }
        }

        var sortedReady = ready.Order().ToArray();
        var sortedRss = rss.Order().ToArray();
        return new StartupReport(options.Plugin, options.Runs, Median(sortedReady), sortedReady[0], sortedReady[^1], sortedRss[sortedRss.Length / 2], ready, rss);
    }

    private static double Median(double[] sorted) =>
        sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
}
