using System.Net;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.Grpc;
using KmsPlugin.Observability;
using KmsPlugin.Transport;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging.Console;

namespace KmsPlugin.Hosting;

/// <summary>Seams for tests: a fake clock, observable randomness, extra log sinks.</summary>
public sealed record ServerDependencies
{
    public TimeProvider Time { get; init; } = TimeProvider.System;

    public IRandomSource Random { get; init; } = CsprngRandomSource.Instance;

    public ILoggerProvider? ExtraLogger { get; init; }

    /// <summary>Wraps each root key after it is built (tests count remote calls this way).</summary>
    public Func<IRootKey, IRootKey>? DecorateRootKey { get; init; }

    /// <summary>Replaces or wraps each opened root key inside its circuit breaker (tests count the calls that reach the remote this way).</summary>
    public Func<IRootKey, IRootKey>? DecorateRemote { get; init; }
}

/// <summary>
/// The plugin process: Kestrel on a Unix socket speaking HTTP/2 cleartext only (kube-apiserver dials h2c with prior
/// knowledge), the KMS v2 gRPC service, the background probe and, if configured, HTTP health on loopback.
/// </summary>
public static class PluginServer
{
    /// <summary>Largest request accepted: 32 KiB of annotations + 1 KiB ciphertext + 1 KiB key_id + framing, with room.
    /// Anything bigger cannot be something the plugin issued and is refused by gRPC with ResourceExhausted.</summary>
    public const int MaxReceiveMessageBytes = 64 * 1024;

    public static WebApplication Build(PluginConfig config, ServerDependencies? dependencies = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        dependencies ??= new ServerDependencies();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        ConfigureLogging(builder.Logging, config.Logging);
        if (dependencies.ExtraLogger is { } extra)
        {
            builder.Logging.AddProvider(extra);
        }

        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = config.ShutdownTimeout);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.ListenUnixSocket(config.SocketPath, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                listen.Use(Http2AuthorityNormalizer.Middleware); // kube-apiserver 1.27-1.31 send the socket path as :authority
            });
            if (config.Health.ListenHost is { } host)
            {
                kestrel.Listen(IPAddress.Parse(host), config.Health.ListenPort, listen => listen.Protocols = HttpProtocols.Http1);
            }
        });

        builder.Services.AddGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = MaxReceiveMessageBytes;
            grpc.EnableDetailedErrors = false;
            grpc.Interceptors.Add<ErrorMappingInterceptor>();
        });

        // grpc-dotnet activates a service or interceptor that is not in the container once per call; these hold no
        // per-call state (everything they touch is a thread-safe singleton), so one instance serves every call.
        builder.Services.AddSingleton<ErrorMappingInterceptor>();
        builder.Services.AddSingleton<KeyManagementGrpcService>();
        builder.Services.AddSingleton<KeyManagementV1Beta1GrpcService>();

        builder.Services.AddSingleton(dependencies.Time);
        builder.Services.AddSingleton(dependencies.Random);
        builder.Services.AddSingleton(new StatusVersion(config.StatusVersion));
        builder.Services.AddSingleton(services => new RootKeyRingBuilder(
            entry => RootKeyFactory.Create(entry, dependencies.Random, services.GetRequiredService<PluginMetrics>(),
                RemoteRootKeyGuard.For(config, dependencies, services.GetRequiredService<ILoggerFactory>())),
            key => dependencies.DecorateRootKey is { } decorate ? decorate(key) : key,
            RootKeyRingBuilder.OpenHistory(config)));
        builder.Services.AddSingleton(services =>
            new ActiveRootKeys(services.GetRequiredService<RootKeyRingBuilder>().Build(config.RootKeys, null), dependencies.Time, config.RootKeyTimeout * 3));
        builder.Services.AddSingleton(services => new RootKeyVersionFollower(services.GetRequiredService<ActiveRootKeys>(),
            services.GetRequiredService<RootKeyRingBuilder>(), config.RootKeyTimeout, services.GetRequiredService<ILogger<RootKeyVersionFollower>>()));
        builder.Services.AddSingleton(services =>
        {
            var reloader = new ConfigReloader(config, services.GetRequiredService<ActiveRootKeys>(), services.GetRequiredService<RootKeyRingBuilder>(),
                services.GetRequiredService<RootKeyVersionFollower>(), services.GetRequiredService<ILogger<ConfigReloader>>());
            var metrics = services.GetRequiredService<PluginMetrics>();
            reloader.Reloaded += outcome => metrics.RecordConfigReload(outcome switch
            {
                ConfigReloadOutcome.Applied => PluginMetrics.ReloadApplied,
                ConfigReloadOutcome.Rejected => PluginMetrics.ReloadRejected,
                _ => PluginMetrics.ReloadUnchanged,
            });
            return reloader;
        });
        builder.Services.AddHostedService<ConfigWatcher>();
        builder.Services.AddSingleton(services => new EnvelopeService(
            services.GetRequiredService<ActiveRootKeys>(),
            new EnvelopeOptions
            {
                MaxUses = config.Kek.MaxUses,
                MaxAge = config.Kek.MaxAge,
                CacheSize = config.Kek.CacheSize,
                RootKeyTimeout = config.RootKeyTimeout,
                Mode = config.EnvelopeMode,
            },
            dependencies.Time,
            dependencies.Random,
            services.GetRequiredService<ILoggerFactory>().CreateLogger("KmsPlugin.Envelope")));
        builder.Services.AddSingleton(services =>
        {
            var keys = services.GetRequiredService<ActiveRootKeys>();
            return new RootKeyHealthMonitor(() => keys.Current, config.Health.ProbeInterval, config.RootKeyTimeout, dependencies.Time, dependencies.Random,
                services.GetRequiredService<ILoggerFactory>().CreateLogger("KmsPlugin.Health"));
        });
        builder.Services.AddHostedService<HealthProbeService>();
        builder.Services.AddPluginMetrics(config);

        var app = builder.Build();
        app.MapGrpcService<KeyManagementGrpcService>();
        KmsV1Beta1Endpoint.MapIfEnabled(app, config.KmsV1beta1);
        if (config.Health.ListenHost is not null)
        {
            HealthEndpoints.Map(app, config.Health.ListenPort);
            app.MapPluginMetrics(config);
        }

        return app;
    }

    /// <summary>
    /// Starts serving: opens the root keys (failing fast with a clear error), prepares the socket path, binds, and
    /// sets the socket's permissions. On stop the socket file is removed.
    /// </summary>
    public static async Task StartAsync(WebApplication app, PluginConfig config, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(config);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("KmsPlugin");
        var ring = app.Services.GetRequiredService<ActiveRootKeys>().Current; // opens every root key now, not on the first request
        _ = app.Services.GetRequiredService<EnvelopeService>();
        UnixSocketGuard.PrepareForBind(config.SocketPath, logger);
        app.Lifetime.ApplicationStopped.Register(() => UnixSocketGuard.Remove(config.SocketPath));
        await app.StartAsync(cancellationToken);
        UnixSocketGuard.ApplyPermissions(config.SocketPath, config.SocketGroup);

        if (config.Development)
        {
            logger.LogWarning("DEVELOPMENT MODE: the root key is a local file ({KeyFile}); never use --dev for a real cluster",
                (config.RootKeys[0].Settings as Configuration.Providers.LocalRootKeyConfig)?.KeyFile);
        }

        if (config.EnvelopeMode == EnvelopeMode.Direct)
        {
            logger.LogWarning("envelope mode direct: every Encrypt and Decrypt calls the root key (no local KEK); meant for comparison benchmarks");
        }

        foreach (var entry in ring.Entries)
        {
            logger.LogInformation("root key {RootKey} ({Provider}) key_id {KeyIdHash} is {Role}", entry.Key.Name, entry.Key.Provider,
                KeyIdHash.Of(entry.Role == RootKeyRole.Primary ? ring.PrimaryKeyId : entry.Key.KeyId), entry.Role switch
                {
                    RootKeyRole.Primary => "primary",
                    RootKeyRole.AdditionalWrap => "an additional wrap",
                    _ => "decrypt-only",
                });
        }

        logger.LogInformation("serving KMS v2 ({Version}) on unix://{Socket} (mode {Mode})", config.StatusVersion, config.SocketPath,
            config.SocketGroup is null ? "0600" : "0660 group " + config.SocketGroup);
    }

    private static void ConfigureLogging(ILoggingBuilder logging, LoggingConfig config)
    {
        logging.ClearProviders();
        logging.SetMinimumLevel(config.Level);
        logging.AddFilter("Microsoft", LogLevel.Warning);
        logging.AddFilter("Grpc", LogLevel.Warning);
        if (config.Format == "json")
        {
            logging.AddJsonConsole(o =>
            {
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        }
        else
        {
            logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            });
        }

        logging.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
    }
}
