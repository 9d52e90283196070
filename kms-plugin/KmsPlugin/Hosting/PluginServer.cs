using System.Net;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.Grpc;
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

        builder.Services.AddSingleton(dependencies.Time);
        builder.Services.AddSingleton(dependencies.Random);
        builder.Services.AddSingleton(new StatusVersion(config.StatusVersion));
        builder.Services.AddSingleton(_ =>
        {
            var ring = RootKeyFactory.CreateRing(config.RootKeys, dependencies.Random);
            return dependencies.DecorateRootKey is { } decorate ? new RootKeyRing(ring.Keys.Select(decorate).ToList()) : ring;
        });
        builder.Services.AddSingleton(services => new EnvelopeService(
            services.GetRequiredService<RootKeyRing>(),
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
            var ring = services.GetRequiredService<RootKeyRing>();
            return new RootKeyHealthMonitor(() => ring, config.Health.ProbeInterval, config.RootKeyTimeout, dependencies.Time, dependencies.Random,
                services.GetRequiredService<ILoggerFactory>().CreateLogger("KmsPlugin.Health"));
        });
        builder.Services.AddHostedService<HealthProbeService>();

        var app = builder.Build();
        app.MapGrpcService<KeyManagementGrpcService>();
        if (config.Health.ListenHost is not null)
        {
            HealthEndpoints.Map(app, config.Health.ListenPort);
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
        var ring = app.Services.GetRequiredService<RootKeyRing>(); // opens every root key now, not on the first request
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

        foreach (var key in ring.Keys)
        {
            logger.LogInformation("root key {RootKey} ({Provider}) key_id {KeyIdHash}{Role}", key.Name, key.Provider, KeyIdHash.Of(key.KeyId),
                ReferenceEquals(key, ring.Primary) ? " is primary" : " is decrypt-only");
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
