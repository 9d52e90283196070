using KmsPlugin.LoadGenerator.Load;
using KmsPlugin.LoadGenerator.Processes;

namespace KmsPlugin.LoadGenerator.Scenarios;

internal sealed record StatusCostOptions(int Calls, int Streams, TimeSpan Latency);

/// <summary>
/// Status cost in steady state: a plugin whose root key is remote (latency and counting as in the restart storm),
/// settled after start-up, answers <c>Calls</c> Status calls; the root-key calls made meanwhile are counted.
/// </summary>
internal static class StatusCostScenario
{
    public static async Task<StatusCostReport> RunAsync(StatusCostOptions options, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        using var directory = new BenchDirectory();
        var config = LatencyPluginProcess.WriteConfig(directory, "kek", 1L << 21);
        await using var plugin = await LatencyPluginProcess.StartAsync(directory, config, options.Latency);
        try
        {
            using var target = new KmsTarget("plugin", plugin.SocketPath);
            var before = await plugin.CountsAsync();
            var result = await LoadPhase.RunAsync(options.Streams, null, options.Calls, async (_, _) => (await target.StatusAsync()).Healthz == "ok");
            var calls = (await plugin.CountsAsync() - before).Calls;
            var report = new StatusCostReport(result.Calls, calls, result.Calls > 0 ? calls * 1000.0 / result.Calls : 0, result.Errors);
            await log.WriteLineAsync(Report.FormatStatusCost(report));
            return report;
        }
        finally
        {
            await plugin.StopAsync();
        }
    }
}
