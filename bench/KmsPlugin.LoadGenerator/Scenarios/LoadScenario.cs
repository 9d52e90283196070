using KmsPlugin.LoadGenerator.Load;
using KmsPlugin.LoadGenerator.Processes;
using KmsPlugin.Protocol.V2;

namespace KmsPlugin.LoadGenerator.Scenarios;

internal sealed record LoadOptions(string Plugin, IReadOnlyDictionary<string, string> PluginEnvironment, int Streams, TimeSpan Duration, TimeSpan Warmup,
    bool IncludeBare, bool IncludeInterceptor, int DecryptPool = 256);

/// <summary>
/// Hot-path load: the real plugin (<c>kms-plugin serve --dev</c>, a child process) and the no-op ceiling (same server
/// stack, a child process), each over one HTTP/2 connection with <c>Streams</c> concurrent calls and 3 s deadlines,
/// method by method, alternating between servers so drift on a shared machine hits both alike. Server CPU per call
/// comes from each child's /proc/PID/stat over the measured window (warm-up excluded).
/// </summary>
internal static class LoadScenario
{
    public static readonly string[] Methods = ["Status", "Encrypt", "Decrypt"];

    public static async Task<LoadReport> RunAsync(LoadOptions options, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        using var directory = new BenchDirectory();
        var servers = new List<(string Name, string Socket, ChildProcess Process)>();
        try
        {
            var pluginSocket = directory.FilePath("kms.sock");
            servers.Add(("noop", directory.FilePath("noop.sock"),
                ChildProcess.Start(ProcessCommand.For(ProcessCommand.Self, "noop-server", "--listen", "unix://" + directory.FilePath("noop.sock")), directory.Path)));
            var plugin = ChildProcess.Start(ProcessCommand.For(options.Plugin, "serve", "--dev", "--listen", "unix://" + pluginSocket).WithEnvironment(options.PluginEnvironment),
                directory.Path);
            servers.Add(("plugin", pluginSocket, plugin));
            if (options.IncludeBare)
            {
                servers.Add(("noop-bare", directory.FilePath("bare.sock"),
                    ChildProcess.Start(ProcessCommand.For(ProcessCommand.Self, "noop-server", "--bare", "--listen", "unix://" + directory.FilePath("bare.sock")),
                        directory.Path)));
            }

            if (options.IncludeInterceptor)
            {
                servers.Add(("noop+icpt", directory.FilePath("icpt.sock"),
                    ChildProcess.Start(ProcessCommand.For(ProcessCommand.Self, "noop-server", "--interceptor", "--listen", "unix://" + directory.FilePath("icpt.sock")),
                        directory.Path)));
            }

            var pluginReady = TimeSpan.Zero;
            foreach (var (name, socket, process) in servers)
            {
                var ready = await Readiness.WaitAsync(process, socket, TimeSpan.FromSeconds(30));
                pluginReady = name == "plugin" ? ready : pluginReady;
            }

            // Idle: after the plugin's first root-key probe and first KEK (both start with the process).
            await Task.Delay(TimeSpan.FromSeconds(2));
            var rssIdle = plugin.RssBytes();

            var targets = servers.Select(s => (Target: new KmsTarget(s.Name, s.Socket), s.Process)).ToList();
            try
            {
                var pluginTarget = targets.Single(t => t.Target.Name == "plugin").Target;

                // Stored objects, as the apiserver would send them back: made by the plugin; the no-op gets the same requests.
                var stored = new DecryptRequest[options.DecryptPool];
                for (var i = 0; i < stored.Length; i++)
                {
                    stored[i] = KmsTarget.DecryptRequestFor(await pluginTarget.EncryptAsync(KmsTarget.NewEncryptRequest()));
                }

                var encryptRequests = Enumerable.Range(0, options.Streams).Select(_ => KmsTarget.NewEncryptRequest()).ToArray();
                LoadPhase.Call CallFor(string method, KmsTarget target) => method switch
                {
                    "Status" => async (_, _) => (await target.StatusAsync()).Healthz == "ok",
                    "Encrypt" => async (stream, _) => (await target.EncryptAsync(encryptRequests[stream])).Ciphertext.Length > 0,
                    _ => async (_, n) => (await target.DecryptAsync(stored[n % stored.Length])).Plaintext.Length == 32,
                };

                // Warm every server and every method (and this client) before measuring anything: tiered JIT and PGO
                // keep recompiling for a while, and the first measured phase must not pay for it.
                if (options.Warmup > TimeSpan.Zero)
                {
                    foreach (var method in Methods)
                    {
                        foreach (var (target, _) in targets)
                        {
                            await LoadPhase.RunAsync(options.Streams, options.Warmup, null, CallFor(method, target));
                        }
                    }
                }

                var rows = new List<LoadRow>();
                await using var pluginRss = new RssSampler(plugin);
                await using var noopRss = new RssSampler(servers[0].Process);
                foreach (var method in Methods)
                {
                    foreach (var (target, process) in targets)
                    {
                        var call = CallFor(method, target);
                        var cpuBefore = process.CpuTime();
                        var result = await LoadPhase.RunAsync(options.Streams, options.Duration, null, call);
                        var cpu = process.CpuTime() - cpuBefore;
                        var row = new LoadRow(method, target.Name, options.Streams, result.Calls, result.Errors, result.ErrorsByKind, result.Elapsed.TotalSeconds,
                            result.Throughput, result.Latency.P50, result.Latency.P99, result.Latency.P999,
                            result.Calls > 0 ? cpu.TotalMicroseconds / result.Calls : null);
                        rows.Add(row);
                        await log.WriteLineAsync(Report.FormatLoadRow(row));
                    }
                }

                var ratios = Methods.Select(m =>
                {
                    var noop = rows.Single(r => r.Method == m && r.Target == "noop");
                    var real = rows.Single(r => r.Method == m && r.Target == "plugin");
                    return new LoadRatio(m, noop.Throughput > 0 ? real.Throughput / noop.Throughput : 0,
                        real.CpuMicrosPerCall is { } p && noop.CpuMicrosPerCall is { } n && n > 0 ? p / n : null);
                }).ToList();
                return new LoadReport(options.Plugin, options.Streams, options.Duration.TotalSeconds, rows, ratios, pluginReady.TotalMilliseconds,
                    rssIdle, pluginRss.MaxBytes, plugin.PeakRssBytes(), noopRss.MaxBytes);
            }
            finally
            {
                foreach (var (target, _) in targets)
                {
                    target.Dispose();
                }
            }
        }
        finally
        {
            foreach (var (_, _, process) in servers)
            {
                await process.StopAsync(TimeSpan.FromSeconds(10));
                await process.DisposeAsync();
            }
        }
    }
}
