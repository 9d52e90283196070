using System.Diagnostics.Metrics;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Observability;

/// <summary>
/// The plugin's state, read at scrape time by observable instruments: the KEK cache, KEK rotations, the current KEK's
/// age and uses, the current key_id (as a hash) and the last root-key probe. Nothing is sampled between scrapes, and
/// every value is read from memory (no remote call, as for Status).
/// <para>
/// A hosted service only so that it is created when the host starts: by then <see cref="Hosting.PluginServer"/> has
/// opened the root keys, and resolving the envelope core here cannot change when or how their errors surface.
/// </para>
/// </summary>
public sealed class PluginStateMetrics : IHostedService
{
    public PluginStateMetrics(PluginMetrics metrics, EnvelopeService envelope, RootKeyHealthMonitor health, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentNullException.ThrowIfNull(envelope);
        ArgumentNullException.ThrowIfNull(health);
        ArgumentNullException.ThrowIfNull(time);
        var meter = metrics.Meter;

        meter.CreateObservableCounter("kms_plugin_kek_cache_hits", () => envelope.CacheStatistics.Hits, "{lookup}",
            "Decrypts whose KEK was already unwrapped in memory");
        meter.CreateObservableCounter("kms_plugin_kek_cache_misses", () => envelope.CacheStatistics.Misses, "{lookup}",
            "Decrypts whose KEK had to be unwrapped by a root key (concurrent misses on one KEK share one unwrap)");
        meter.CreateObservableCounter("kms_plugin_kek_cache_evictions", () => envelope.CacheStatistics.Evictions, "{kek}",
            "Unwrapped KEKs dropped from memory because the cache was full (kek.cacheSize)");
        meter.CreateObservableUpDownCounter("kms_plugin_kek_cache_size", () => envelope.CacheStatistics.Size, "{kek}",
            "Unwrapped KEKs held in memory");
        meter.CreateObservableCounter("kms_plugin_kek_rotations", () => envelope.Rotations, "{kek}",
            "Local KEKs made by this process (the first one, then on use or age limit or a primary root key change)");
        meter.CreateObservableGauge("kms_plugin_kek_age", () => CurrentKekAge(envelope, time), "s",
            "Age of the KEK that seals new seeds (absent before the first one is made)");
        meter.CreateObservableGauge("kms_plugin_kek_uses", () => CurrentKekUses(envelope), "{seal}",
            "Seeds sealed by the current KEK (absent before the first one is made); a new KEK is made at kek.maxUses");
        meter.CreateObservableGauge("kms_plugin_kek_missing_wraps", () => CurrentKekMissingWraps(envelope), unit: null,
            "1 when an additional-wrap root key could not wrap the current KEK (retried with a new KEK after a minute); "
            + "seeds sealed meanwhile carry no wrap of that key");
        meter.CreateObservableGauge("kms_plugin_key_id_info", () => KeyIdInfo(envelope), unit: null,
            "Always 1; the key_id_hash label is sha256:<first 16 hex> of the key_id Status reports, as in the plugin's logs");
        meter.CreateObservableGauge("kms_plugin_root_key_probe_success", () => health.Current.Healthy ? 1 : 0, unit: null,
            "1 when the last probe of the primary root key (wrap and unwrap of a random canary) succeeded, else 0 (also before the first)");
        meter.CreateObservableGauge("kms_plugin_root_key_probe_age", () => (time.GetUtcNow() - health.Current.CheckedAt).TotalSeconds, "s",
            "Time since the last root key probe finished (or since start, before the first one)");
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static IEnumerable<Measurement<double>> CurrentKekAge(EnvelopeService envelope, TimeProvider time) =>
        envelope.CurrentKek is { } kek ? [new Measurement<double>((time.GetUtcNow() - kek.CreatedAt).TotalSeconds)] : [];

    private static IEnumerable<Measurement<long>> CurrentKekUses(EnvelopeService envelope) =>
        envelope.CurrentKek is { } kek ? [new Measurement<long>(kek.Seals)] : [];

    private static IEnumerable<Measurement<int>> CurrentKekMissingWraps(EnvelopeService envelope) =>
        envelope.CurrentKek is { } kek ? [new Measurement<int>(kek.MissingWraps ? 1 : 0)] : [];

    private static Measurement<int> KeyIdInfo(EnvelopeService envelope) =>
        new(1, new KeyValuePair<string, object?>("key_id_hash", KeyIdHash.Of(envelope.CurrentKeyId)));
}
