using System.Globalization;
using KmsPlugin.Configuration;
using KmsPlugin.LoadGenerator.Processes;

namespace KmsPlugin.LoadGenerator.Scenarios;

/// <summary>
/// A plugin process whose root key is "remote": the real plugin (PluginServer, from a YAML configuration) run by
/// <c>kms-plugin-bench latency-plugin</c> with every root-key call delayed and counted (see Servers/LatencyRootKey).
/// Each instance is a fresh process: cold cache, cold JIT, as after a node restart.
/// </summary>
internal sealed class LatencyPluginProcess : IAsyncDisposable
{
    private readonly ChildProcess _process;

    private LatencyPluginProcess(ChildProcess process, string socketPath, TimeSpan ready)
    {
        _process = process;
        SocketPath = socketPath;
        Ready = ready;
    }

    public string SocketPath { get; }

    /// <summary>Process start to the first answered Status.</summary>
    public TimeSpan Ready { get; }

    public ChildProcess Process => _process;

    /// <summary>
    /// Writes the plugin configuration for a scenario: a local root key file (behind the latency), the given envelope
    /// mode and KEK use limit, and a 10-minute probe interval so no background probe lands inside a measured window
    /// (probes run on a timer whatever the traffic; they are not caused by the calls being counted).
    /// </summary>
    public static string WriteConfig(BenchDirectory directory, string mode, long maxUses)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var path = directory.FilePath($"plugin-{mode}.yaml");
        File.WriteAllText(path, string.Create(CultureInfo.InvariantCulture, $$"""
            listen: unix://{{directory.FilePath("plugin.sock")}}
            envelope: { mode: {{mode}} }
            kek: { maxUses: {{maxUses}} }
            rootKeys:
              - name: remote
                provider: local
                local: { keyFile: {{directory.FilePath("root.key")}}, create: true }
            health: { probeInterval: 10m }
            logging: { level: warning }
            """));
        return path;
    }

    /// <summary>Starts the process and waits until it serves and has settled (first probe done, nothing in flight).</summary>
    public static async Task<LatencyPluginProcess> StartAsync(BenchDirectory directory, string configPath, TimeSpan latency)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var socket = directory.FilePath("plugin.sock");
        var child = ChildProcess.Start(
            ProcessCommand.For(ProcessCommand.Self, "latency-plugin", "--config", configPath, "--latency", GoDuration.Format(latency)), directory.Path);
        try
        {
            var ready = await Readiness.WaitAsync(child, socket, TimeSpan.FromSeconds(30));
            var plugin = new LatencyPluginProcess(child, socket, ready);
            await plugin.SettleAsync(TimeSpan.FromSeconds(30));
            return plugin;
        }
        catch
        {
            await child.DisposeAsync();
            throw;
        }
    }

    public async Task<RemoteCounts> CountsAsync() => RemoteCounts.Parse(await _process.RequestLineAsync("counts", "counts ", TimeSpan.FromSeconds(10)));

    /// <summary>
    /// Waits for the start-up root-key calls to finish: the health probe (wrap + unwrap of a canary) and, in KEK mode,
    /// the first KEK (a wrap). Both begin together when the process starts, so "healthy with nothing in flight" means done.
    /// </summary>
    private async Task SettleAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        while (true)
        {
            var counts = await CountsAsync();
            if (counts.Healthy && counts.InFlight == 0)
            {
                return;
            }

            await Task.Delay(10, cancel.Token);
        }
    }

    public async Task StopAsync() => await _process.StopAsync(TimeSpan.FromSeconds(15));

    public async ValueTask DisposeAsync() => await _process.DisposeAsync();
}
