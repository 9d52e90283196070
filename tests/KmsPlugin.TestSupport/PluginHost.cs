using Grpc.Net.Client;
using KmsPlugin.Client;
using KmsPlugin.Configuration;
using KmsPlugin.Configuration.Providers;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Hosting;

namespace KmsPlugin.TestSupport;

/// <summary>
/// The real server (Kestrel, gRPC, envelope core) started in-process on a real Unix socket in a private temp
/// directory, with a real HTTP/2 client connected the way kube-apiserver connects.
/// </summary>
public sealed class PluginHost : IAsyncDisposable
{
    private readonly TempDirectory? _ownedDirectory;

    private PluginHost(WebApplication app, PluginConfig config, TempDirectory? ownedDirectory)
    {
        App = app;
        Config = config;
        _ownedDirectory = ownedDirectory;
        Channel = UnixSocketChannel.Create(config.SocketPath);
        // The apiserver's default is 3 s; tests allow more so a loaded CI machine cannot turn a slow call into a
        // failure. Deadline behaviour itself is tested with explicit short deadlines.
        Apiserver = new ApiserverEmulator(Channel, TimeSpan.FromSeconds(15));
    }

    public WebApplication App { get; }

    public PluginConfig Config { get; }

    public GrpcChannel Channel { get; }

    public ApiserverEmulator Apiserver { get; }

    public string SocketPath => Config.SocketPath;

    public EnvelopeService Envelope => App.Services.GetRequiredService<EnvelopeService>();

    public RootKeyRing Ring => App.Services.GetRequiredService<ActiveRootKeys>().Current;

    /// <summary>A plugin with a local root key file in a fresh directory (or the given one, to share the key).</summary>
    public static Task<PluginHost> StartLocalAsync(TempDirectory? directory = null, ServerDependencies? dependencies = null,
        Func<PluginConfig, PluginConfig>? adjust = null)
    {
        var owned = directory is null ? new TempDirectory() : null;
        var dir = directory ?? owned!;
        var config = new PluginConfig
        {
            SocketPath = dir.FilePath($"kms-{Guid.NewGuid():N}"[..12] + ".sock"),
            Kek = new KekConfig(),
            RootKeys = [new RootKeyConfig { Name = "dev", Provider = "local", Settings = new LocalRootKeyConfig(dir.FilePath("root.key"), true) }],
            Health = new HealthConfig(),
            Logging = new LoggingConfig { Level = LogLevel.Warning },
        };
        return StartAsync(adjust?.Invoke(config) ?? config, dependencies, owned);
    }

    public static async Task<PluginHost> StartAsync(PluginConfig config, ServerDependencies? dependencies = null, TempDirectory? ownedDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var app = PluginServer.Build(config, dependencies);
        try
        {
            await PluginServer.StartAsync(app, config);
        }
        catch
        {
            await app.DisposeAsync();
            ownedDirectory?.Dispose();
            throw;
        }

        var host = new PluginHost(app, config, ownedDirectory);
        return host;
    }

    /// <summary>A plugin on <paramref name="config"/> whose start-up probe is over (what tests that count remote calls need).</summary>
    public static async Task<PluginHost> StartAfterProbeAsync(PluginConfig config)
    {
        var plugin = await StartAsync(config);
        await plugin.WaitForProbeAsync();
        return plugin;
    }

    /// <summary>Waits until the background probe has a verdict (Status healthz leaves "starting").</summary>
    public async Task WaitForProbeAsync()
    {
        var monitor = App.Services.GetRequiredService<RootKeyHealthMonitor>();
        for (var i = 0; i < 800 && monitor.Current.Reason.StartsWith("starting", StringComparison.Ordinal); i++)
        {
            await Task.Delay(25);
        }

        if (monitor.Current.Reason.StartsWith("starting", StringComparison.Ordinal))
        {
            // Tests that count remote calls or inject one-shot faults rely on the start-up probe being over.
            throw new TimeoutException($"the plugin's first root-key probe did not finish within 20 s ({monitor.Current.Reason})");
        }
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        _ownedDirectory?.Dispose();
    }
}
