
using KmsPlugin.Client;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.Security;
using KmsPlugin.Hosting;

namespace KmsPlugin.Cli;

/// <summary>The commands of <c>kms-plugin</c>. Exit codes: 0 success, 1 failure, 2 usage or configuration error.</summary>
public static class Commands
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int BadUsage = 2;

    public const string MainHelp = """
        kms-plugin — Kubernetes KMS v2 encryption plugin (local KEK hierarchy, root key in an HSM or KMS)

        Usage: kms-plugin COMMAND [options]

        Commands:
          serve     run the plugin on a Unix socket for kube-apiserver
          status    ask a running plugin for its Status (version, healthz, key_id)
          probe     check a running plugin like kube-apiserver does: Status, Encrypt and Decrypt of a random seed
          doctor    check a configuration before use: fields, socket path, each root key, the key_id it gives
          audit     read etcd: what is stored in plaintext or under which provider and key_id (before retiring a key)
          version   print the plugin version

        Run 'kms-plugin COMMAND --help' for a command's options.
        """;

    private const string ServeHelp = """
        Usage: kms-plugin serve (--config FILE | --dev) [--listen unix:///PATH]

        Runs the plugin. The configuration is a YAML file (see docs/configuration.md).

        Options:
          --config FILE            the configuration file
          --listen unix:///PATH    serve on this socket instead of the one in the configuration
          --dev                    development mode: a local root key created as a 0600 file and the socket
                                   kms-plugin.sock, both in the working directory. Not for real clusters.
        """;

    private const string StatusHelp = """
        Usage: kms-plugin status --listen unix:///PATH [--timeout 3s]

        Prints the plugin's Status: version, healthz and key_id. Exit 0 when healthz is "ok".
        """;

    private const string ProbeHelp = """
        Usage: kms-plugin probe --listen unix:///PATH [--timeout 3s]

        Checks a running plugin the way kube-apiserver does: Status, then Encrypt of a random 32-byte seed, checked
        against the apiserver's rules (sizes, annotation keys, Encrypt key_id == Status key_id), then Decrypt of
        exactly what Encrypt returned. Exit 0 when everything passes and healthz is "ok".
        """;

    private static readonly Dictionary<string, bool> ServeOptions = new() { ["--config"] = true, ["--listen"] = true, ["--dev"] = false };
    private static readonly Dictionary<string, bool> ClientOptions = new() { ["--listen"] = true, ["--timeout"] = true };

    public static async Task<int> RunAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            Console.Out.WriteLine(MainHelp);
            return args.Length == 0 ? BadUsage : Ok;
        }

        var (help, run) = args[0] switch
        {
            "serve" => (ServeHelp, (Func<CommandLine, Task<int>>)ServeAsync),
            "status" => (StatusHelp, StatusAsync),
            "probe" => (ProbeHelp, ProbeAsync),
            "doctor" => (DoctorCommand.Help, DoctorAsync),
            "audit" => (AuditCommand.Help, line => AuditCommand.RunAsync(line, Console.Out, Console.Error)),
            "version" => ("Usage: kms-plugin version", _ => Task.FromResult(PrintVersion())),
            _ => (null!, null!),
        };
        if (run is null)
        {
            await Console.Error.WriteLineAsync($"kms-plugin: unknown command '{args[0]}'\n\n{MainHelp}");
            return BadUsage;
        }

        try
        {
            var spec = args[0] switch
            {
                "serve" or "doctor" => ServeOptions,
                "audit" => AuditCommand.Options,
                "version" => [],
                _ => ClientOptions,
            };
            var line = CommandLine.Parse(args[0], args[1..], spec);
            if (line.Help)
            {
                Console.Out.WriteLine(help);
                return Ok;
            }

            return await run(line);
        }
        catch (UsageException e)
        {
            await Console.Error.WriteLineAsync($"kms-plugin {args[0]}: {e.Message}\n\n{help}");
            return BadUsage;
        }
        catch (ConfigException e)
        {
            await Console.Error.WriteLineAsync($"kms-plugin {args[0]}: configuration error: {e.Message}");
            return BadUsage;
        }
        catch (KmsPluginException e)
        {
            await Console.Error.WriteLineAsync($"kms-plugin {args[0]}: {e.Message}");
            return Failed;
        }
    }

    private static int PrintVersion()
    {
        var version = typeof(Commands).Assembly.GetName().Version ?? new Version(0, 0);
        Console.Out.WriteLine($"kms-plugin {version.ToString(3)} (KMS v2, .NET {Environment.Version})");
        return Ok;
    }

    /// <summary>--config FILE or --dev, with the --listen override.</summary>
    private static (PluginConfig Config, string Source) LoadConfig(CommandLine line)
    {
        var listen = line.Value("--listen");
        if (line.Has("--dev"))
        {
            if (line.Has("--config"))
            {
                throw new UsageException("--dev and --config cannot be combined: --dev is the embedded development configuration");
            }

            return (DevelopmentConfig.For(Directory.GetCurrentDirectory(), listen), "--dev");
        }

        var file = line.Value("--config") ?? throw new UsageException("--config FILE is required (or --dev for the development default)");
        return (ConfigLoader.LoadFile(file, listen), file);
    }

    private static Task<int> DoctorAsync(CommandLine line)
    {
        var (config, source) = LoadConfig(line);
        return DoctorCommand.RunAsync(config, source, Console.Out);
    }

    private static async Task<int> ServeAsync(CommandLine line)
    {
        var (config, _) = LoadConfig(line);
        UnixSocketGuard.RestrictUmask();
        await using var app = PluginServer.Build(config);
        try
        {
            await PluginServer.StartAsync(app, config);
        }
        catch (InvalidOperationException e) when (e.InnerException is KmsPluginException inner)
        {
            throw inner; // a root key failed to open inside DI construction
        }
        catch (IOException e)
        {
            // Kestrel could not bind (the health port is taken, ...): a clear line and exit 1, not an unhandled crash.
            await Console.Error.WriteLineAsync($"kms-plugin serve: cannot listen: {e.Message}"
                + (config.Health.ListenHost is { } host ? $" (health.listen {host}:{config.Health.ListenPort}; is another plugin running?)" : ""));
            return Failed;
        }

        await app.WaitForShutdownAsync();
        return Ok;
    }

    private static async Task<int> StatusAsync(CommandLine line)
    {
        var emulator = Connect(line, out var channel);
        using (channel)
        {
            try
            {
                var status = await emulator.StatusAsync();
                Console.Out.WriteLine($"version: {status.Version}\nhealthz: {status.Healthz}\nkey_id:  {status.KeyId} ({KeyIdHash.Of(status.KeyId)})");
                if (ApiserverEmulator.CheckStatus(status) is { } problem)
                {
                    Console.Out.WriteLine("INVALID: " + problem);
                    return Failed;
                }

                return status.Healthz == "ok" ? Ok : Failed;
            }
            catch (global::Grpc.Core.RpcException e)
            {
                await Console.Error.WriteLineAsync($"kms-plugin status: {e.StatusCode}: {e.Status.Detail}");
                return Failed;
            }
        }
    }

    private static async Task<int> ProbeAsync(CommandLine line)
    {
        var emulator = Connect(line, out var channel);
        using (channel)
        {
            var report = await emulator.ProbeAsync();
            foreach (var text in report.Lines)
            {
                Console.Out.WriteLine(text);
            }

            return report.Ok ? Ok : Failed;
        }
    }

    private static ApiserverEmulator Connect(CommandLine line, out global::Grpc.Net.Client.GrpcChannel channel)
    {
        var listen = line.Value("--listen") ?? throw new UsageException("--listen unix:///PATH is required");
        var path = ConfigLoader.ParseListen("--listen", listen);
        var timeout = TimeSpan.FromSeconds(3);
        if (line.Value("--timeout") is { } text && (!GoDuration.TryParse(text, out timeout) || timeout <= TimeSpan.Zero))
        {
            throw new UsageException($"--timeout must be a positive duration such as 3s, got \"{text}\"");
        }

        // Without this the gRPC client reports a confusing "localhost:80" connection error after the whole timeout.
        if (!Path.Exists(path))
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"no socket at {path}: is the plugin running, and is this its listen path?");
        }

        channel = UnixSocketChannel.Create(path);
        return new ApiserverEmulator(channel, timeout);
    }

}
