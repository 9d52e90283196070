using System.Globalization;
using System.Runtime.InteropServices;
using KmsPlugin.Cli;
using KmsPlugin.Configuration;
using KmsPlugin.LoadGenerator.Processes;
using KmsPlugin.LoadGenerator.Scenarios;
using KmsPlugin.LoadGenerator.Servers;

namespace KmsPlugin.LoadGenerator;

/// <summary>The commands of <c>kms-plugin-bench</c>. Exit codes: 0 done without a failed call, 1 some call failed, 2 usage.</summary>
internal static class BenchCommands
{
    public const string Help = """
        kms-plugin-bench — end-to-end benchmarks of the KMS plugin over its Unix socket (see bench/README.md)

        Usage: kms-plugin-bench COMMAND [options] [--json FILE]

        Commands:
          load         hot path: the plugin (kms-plugin serve --dev) and a no-op gRPC service on the same server stack,
                       1 HTTP/2 connection x N streams, 3 s deadlines; throughput, p50/p99/p99.9, server CPU per call,
                       the plugin/no-op ratios, RSS idle and under load
                         --plugin PATH (kms-plugin.dll beside this tool, or any build of it)  --streams 64
                         --plugin-env NAME=VALUE,... (environment for the plugin process only, e.g. DOTNET_TieredPGO=0)
                         --duration 10s  --warmup 3s  --with-bare (also a no-op without the connection middleware)
                         --with-interceptor (also a no-op with a pass-through interceptor registered like the plugin's)
          storm        restart storm: N stored seeds under K KEKs, root key behind injected latency, a fresh plugin
                       process decrypts them all; KEK mode and direct-wrap mode side by side
                         --seeds 10000  --keks 20  --latency 20ms  --concurrency 64  --modes kek,direct
          status-cost  root-key calls made while a settled plugin answers Status calls
                         --calls 1000  --streams 64  --latency 20ms
          startup      process start to socket ready and idle RSS of kms-plugin serve --dev
                         --plugin PATH  --plugin-env NAME=VALUE,...  --runs 10  --settle 3s
          all          startup, load, status-cost and storm with the options above

        Internal (started by the commands above as child processes):
          noop-server --listen unix:///PATH [--bare] [--interceptor]
          latency-plugin --config FILE --latency 20ms
        """;

    private static readonly Dictionary<string, bool> LoadOptions = new()
    {
        ["--plugin"] = true, ["--plugin-env"] = true, ["--streams"] = true, ["--duration"] = true, ["--warmup"] = true, ["--with-bare"] = false, ["--with-interceptor"] = false, ["--json"] = true,
    };

    private static readonly Dictionary<string, bool> StormOptions = new()
    {
        ["--seeds"] = true, ["--keks"] = true, ["--latency"] = true, ["--concurrency"] = true, ["--modes"] = true, ["--json"] = true,
    };

    private static readonly Dictionary<string, bool> StatusOptions = new() { ["--calls"] = true, ["--streams"] = true, ["--latency"] = true, ["--json"] = true };

    private static readonly Dictionary<string, bool> StartupOptions = new() { ["--plugin"] = true, ["--plugin-env"] = true, ["--runs"] = true, ["--settle"] = true, ["--json"] = true };

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            Console.Out.WriteLine(Help);
            return args.Length == 0 ? 2 : 0;
        }

        try
        {
            switch (args[0])
            {
                case "noop-server":
                {
                    var line = CommandLine.Parse(args[0], args[1..], new Dictionary<string, bool> { ["--listen"] = true, ["--bare"] = false, ["--interceptor"] = false });
                    return await ServerCommands.RunNoopAsync(ConfigLoader.ParseListen("--listen", Required(line, "--listen")), line.Has("--bare"),
                        line.Has("--interceptor"));
                }

                case "latency-plugin":
                {
                    var line = CommandLine.Parse(args[0], args[1..], new Dictionary<string, bool> { ["--config"] = true, ["--latency"] = true });
                    return await ServerCommands.RunLatencyPluginAsync(Required(line, "--config"), Duration(line, "--latency", TimeSpan.FromMilliseconds(20)));
                }

                case "load" or "storm" or "status-cost" or "startup" or "all":
                    return await RunScenariosAsync(args[0], args[1..]);

                default:
                    await Console.Error.WriteLineAsync($"kms-plugin-bench: unknown command '{args[0]}'\n\n{Help}");
                    return 2;
            }
        }
        catch (Exception e) when (e is UsageException or ConfigException)
        {
            await Console.Error.WriteLineAsync($"kms-plugin-bench: {e.Message}\n\n{Help}");
            return 2;
        }
    }

    private static async Task<int> RunScenariosAsync(string command, string[] args)
    {
        var spec = command switch
        {
            "load" => LoadOptions,
            "storm" => StormOptions,
            "status-cost" => StatusOptions,
            "startup" => StartupOptions,
            _ => LoadOptions.Concat(StormOptions).Concat(StatusOptions).Concat(StartupOptions)
                .DistinctBy(kv => kv.Key).ToDictionary(kv => kv.Key, kv => kv.Value),
        };
        var line = CommandLine.Parse(command, args, spec);
        if (line.Help)
        {
            Console.Out.WriteLine(Help);
            return 0;
        }

        var all = command == "all";
        var plugin = Path.GetFullPath(line.Value("--plugin") ?? ProcessCommand.DefaultPlugin);
        var pluginEnvironment = PluginEnvironment(line);
        var latency = Duration(line, "--latency", TimeSpan.FromMilliseconds(20));
        var log = Console.Out;

        var startup = all || command == "startup"
            ? await StartupScenario.RunAsync(new StartupOptions(plugin, pluginEnvironment, Number(line, "--runs", 10), Duration(line, "--settle", TimeSpan.FromSeconds(3))), log)
            : null;
        var load = all || command == "load"
            ? await LoadScenario.RunAsync(new LoadOptions(plugin, pluginEnvironment, Number(line, "--streams", 64), Duration(line, "--duration", TimeSpan.FromSeconds(10)),
                Duration(line, "--warmup", TimeSpan.FromSeconds(3)), line.Has("--with-bare"), line.Has("--with-interceptor")), log)
            : null;
        var statusCost = all || command == "status-cost"
            ? await StatusCostScenario.RunAsync(new StatusCostOptions(Number(line, "--calls", 1000), Number(line, "--streams", 64), latency), log)
            : null;
        var storm = all || command == "storm"
            ? await RestartStormScenario.RunAsync(new StormOptions(Number(line, "--seeds", 10_000), Number(line, "--keks", 20), latency,
                Number(line, "--concurrency", 64), Modes(line)), log)
            : null;

        var report = new BenchReport(DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), Machine(), startup, load, statusCost, storm);
        await log.WriteLineAsync();
        await log.WriteAsync(Report.Summary(report));
        if (line.Value("--json") is { } json)
        {
            await Report.WriteJsonAsync(json, report);
        }

        var failed = (load?.TotalErrors ?? 0) + (statusCost?.Errors ?? 0) + (storm?.Rows.Sum(r => r.Errors) ?? 0);
        return failed == 0 ? 0 : 1;
    }

    private static string Machine()
    {
        var model = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        return $"{Environment.ProcessorCount} cores ({model}), {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}";
    }

    private static string Required(CommandLine line, string option) => line.Value(option) ?? throw new UsageException($"{option} is required");

    private static int Number(CommandLine line, string option, int fallback)
    {
        if (line.Value(option) is not { } text)
        {
            return fallback;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0
            ? value
            : throw new UsageException($"{option} must be a positive whole number, got \"{text}\"");
    }

    private static TimeSpan Duration(CommandLine line, string option, TimeSpan fallback)
    {
        if (line.Value(option) is not { } text)
        {
            return fallback;
        }

        return GoDuration.TryParse(text, out var value) && value >= TimeSpan.Zero
            ? value
            : throw new UsageException($"{option} must be a duration like 500ms, 3s or 1m, got \"{text}\"");
    }

    /// <summary><c>--plugin-env NAME=VALUE[,NAME=VALUE...]</c>: environment for the plugin process only.</summary>
    private static Dictionary<string, string> PluginEnvironment(CommandLine line)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in (line.Value("--plugin-env") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new UsageException($"--plugin-env takes NAME=VALUE pairs separated by commas, got \"{pair}\"");
            }

            environment[pair[..equals]] = pair[(equals + 1)..];
        }

        return environment;
    }

    private static string[] Modes(CommandLine line)
    {
        var modes = (line.Value("--modes") ?? "kek,direct").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return modes.Length > 0 && modes.All(m => m is "kek" or "direct")
            ? modes
            : throw new UsageException($"--modes must list kek and/or direct, got \"{line.Value("--modes")}\"");
    }
}
