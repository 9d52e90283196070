using System.Diagnostics.Metrics;
using KmsPlugin.Configuration;
using OpenTelemetry.Metrics;

namespace KmsPlugin.Observability;

/// <summary>
/// Wires the plugin's metrics into the host and exposes them in the Prometheus text format at <c>/metrics</c> on the
/// loopback health port (docs/metrics.md).
/// <para>
/// Library choice: the OpenTelemetry .NET SDK with its Prometheus ASP.NET Core exporter, rather than prometheus-net.
/// Both export <see cref="System.Diagnostics.Metrics"/> instruments, but prometheus-net's MeterAdapter (8.2.1)
/// expires any series not updated for at most a day (MeterAdapterOptions.MetricsExpireAfter), so a rare event's
/// counter — a rejected reload, a throttled unwrap, the once-per-restart Encrypt — would vanish and restart from zero,
/// which breaks alerting on increase(). OpenTelemetry keeps cumulative series for the life of the process, names
/// families by the Prometheus conventions (unit "s" becomes <c>_seconds</c>, counters get <c>_total</c>), honours the
/// instruments' bucket advice, and answers OpenMetrics to a Prometheus server that asks for it. The exporter package
/// is a beta; its output format is the stable Prometheus text format, which the end-to-end tests parse.
/// </para>
/// </summary>
public static class MetricsRegistration
{
    /// <summary>
    /// Registers <see cref="PluginMetrics"/> and the state gauges; when the health port is configured, also the
    /// OpenTelemetry meter provider that <see cref="MapPluginMetrics"/> serves. Without the port nothing listens to
    /// the instruments and recording costs next to nothing.
    /// </summary>
    public static IServiceCollection AddPluginMetrics(this IServiceCollection services, PluginConfig config)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(config);
        services.AddMetrics();
        services.AddSingleton<PluginMetrics>();
        services.AddHostedService<PluginStateMetrics>();
        if (config.Health.ListenHost is null)
        {
            return services;
        }

        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(PluginMetrics.MeterName)
            .AddPrometheusExporter(prometheus =>
            {
                // Every scrape reads the current values (the default caches a scrape for 300 ms); Prometheus scrapes every 15 s or more.
                prometheus.ScrapeResponseCacheDurationMilliseconds = 0;
                // No target_info (it would only say "unknown_service") and no otel_scope_name label (always KmsPlugin).
                prometheus.TargetInfoEnabled = false;
                prometheus.ScopeInfoEnabled = false;
            }));

        // The SDK subscribes to meters by name, process-wide (a MeterListener sees every Meter called "KmsPlugin", from
        // every host in the process). Keep only the instruments of meters this host's IMeterFactory created, so several
        // plugin hosts in one process (the tests) each report their own numbers rather than the sum.
        services.ConfigureOpenTelemetryMeterProvider((provider, metrics) =>
        {
            var own = provider.GetRequiredService<IMeterFactory>();
            metrics.AddView(instrument => ReferenceEquals(instrument.Meter.Scope, own) ? null : MetricStreamConfiguration.Drop);
        });
        return services;
    }

    /// <summary>Maps <c>/metrics</c> on the loopback health port only (never on the apiserver's Unix socket), when it is configured.</summary>
    public static WebApplication MapPluginMetrics(this WebApplication app, PluginConfig config)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(config);
        if (config.Health.ListenHost is not null)
        {
            app.MapPrometheusScrapingEndpoint("/metrics").RequireHost($"*:{config.Health.ListenPort}");
        }

        return app;
    }
}
