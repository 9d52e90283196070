using System.Diagnostics.Metrics;
using Grpc.Core;

namespace KmsPlugin.Observability;

/// <summary>
/// The plugin's event instruments (docs/metrics.md): gRPC calls, remote root-key calls and configuration reloads.
/// The meter comes from the host's <see cref="IMeterFactory"/>, not a static <see cref="System.Diagnostics.Metrics.Meter"/>:
/// each plugin host (several run in one test process) owns its meter and reports only its own numbers
/// (<see cref="MetricsRegistration"/> drops every other host's instruments). Label values are bounded: method and
/// status code names, provider kinds, operation and outcome names; never a uid or a raw key_id.
/// </summary>
public sealed class PluginMetrics
{
    /// <summary>The meter every plugin instrument belongs to.</summary>
    public const string MeterName = "KmsPlugin";

    /// <summary><see cref="RecordConfigReload"/>: the new configuration was validated and is in effect.</summary>
    public const string ReloadApplied = "applied";

    /// <summary><see cref="RecordConfigReload"/>: the new configuration was invalid; the previous one stays in effect.</summary>
    public const string ReloadRejected = "rejected";

    /// <summary><see cref="RecordConfigReload"/>: the file changed on disk but means the same configuration.</summary>
    public const string ReloadUnchanged = "unchanged";

    // Bucket bounds in seconds. The hot path (a cached KEK, Status) answers in microseconds, a remote root key in
    // milliseconds to seconds; the OpenTelemetry SDK's default bounds (0 .. 10000) assume milliseconds and would put
    // every call in the first bucket. The KEP's targets (Encrypt < 100 ms, Decrypt < 10 ms) are bucket bounds.
    private static readonly double[] GrpcBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3, 10];
    private static readonly double[] RemoteBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly Counter<long> _grpcRequests;
    private readonly Histogram<double> _grpcDuration;
    private readonly Counter<long> _rootKeyRequests;
    private readonly Histogram<double> _rootKeyDuration;
    private readonly Counter<long> _configReloads;
    private readonly Counter<long> _rootKeyAttempts;

    public PluginMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        Meter = meterFactory.Create(MeterName);

        // Instrument names are the Prometheus family names without the suffixes the exporter adds: "_total" for
        // counters and "_seconds" for the unit "s" (OpenTelemetry's Prometheus compatibility rules).
        _grpcRequests = Meter.CreateCounter<long>("kms_plugin_grpc_requests", "{request}",
            "KMS gRPC calls answered, by api, method and gRPC status code");
        _grpcDuration = Meter.CreateHistogram("kms_plugin_grpc_request_duration", "s",
            "Time to answer a KMS gRPC call, by api, method and gRPC status code", tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = GrpcBuckets });
        _rootKeyRequests = Meter.CreateCounter<long>("kms_plugin_root_key_requests", "{request}",
            "Calls to a root key backend, by provider, operation and outcome");
        _rootKeyDuration = Meter.CreateHistogram("kms_plugin_root_key_request_duration", "s",
            "Duration of calls to a root key backend (including the provider's own retries), by provider, operation and outcome",
            tags: null, new InstrumentAdvice<double> { HistogramBucketBoundaries = RemoteBuckets });
        _rootKeyAttempts = Meter.CreateCounter<long>("kms_plugin_root_key_attempts", "{attempt}",
            "Each try a remote provider's bounded retry policy made within those calls, by provider, operation and outcome");
        _configReloads = Meter.CreateCounter<long>("kms_plugin_config_reloads", "{reload}",
            "Configuration file reloads, by outcome (applied, rejected, unchanged)");

        // Every outcome is reported from the start (as 0), so increase() over a rejected reload works on its first occurrence.
        foreach (var outcome in (string[])[ReloadApplied, ReloadRejected, ReloadUnchanged])
        {
            _configReloads.Add(0, new KeyValuePair<string, object?>("outcome", outcome));
        }
    }

    /// <summary>The meter, for the observable instruments defined elsewhere (<see cref="PluginStateMetrics"/>).</summary>
    public Meter Meter { get; }

    /// <summary>One answered gRPC call (<see cref="Grpc.ErrorMappingInterceptor"/>); <paramref name="fullMethod"/> is the gRPC path.</summary>
    public void RecordGrpcRequest(string fullMethod, StatusCode code, TimeSpan elapsed)
    {
        var (api, method) = GrpcLabels.Method(fullMethod);
        KeyValuePair<string, object?> apiTag = new("api", api);
        KeyValuePair<string, object?> methodTag = new("method", method);
        KeyValuePair<string, object?> codeTag = new("code", GrpcLabels.Code(code));
        _grpcRequests.Add(1, apiTag, methodTag, codeTag);
        _grpcDuration.Record(elapsed.TotalSeconds, apiTag, methodTag, codeTag);
    }

    /// <summary>One call to a root key backend (<see cref="MeteringPolicy"/>).</summary>
    public void RecordRootKeyCall(string provider, string operation, string outcome, TimeSpan elapsed)
    {
        KeyValuePair<string, object?> providerTag = new("provider", provider);
        KeyValuePair<string, object?> operationTag = new("operation", operation);
        KeyValuePair<string, object?> outcomeTag = new("outcome", outcome);
        _rootKeyRequests.Add(1, providerTag, operationTag, outcomeTag);
        _rootKeyDuration.Record(elapsed.TotalSeconds, providerTag, operationTag, outcomeTag);
    }

    /// <summary>One try within a root key call, reported by the provider's retry loop (<see cref="RootKeyAttempts"/>).</summary>
    public void RecordRootKeyAttempt(string provider, string operation, string outcome) =>
        _rootKeyAttempts.Add(1, new KeyValuePair<string, object?>("provider", provider), new KeyValuePair<string, object?>("operation", operation),
            new KeyValuePair<string, object?>("outcome", outcome));

    /// <summary>
    /// One configuration reload, called by the configuration watcher: <paramref name="outcome"/> is
    /// <see cref="ReloadApplied"/>, <see cref="ReloadRejected"/> or <see cref="ReloadUnchanged"/>.
    /// </summary>
    public void RecordConfigReload(string outcome)
    {
        if (outcome is not (ReloadApplied or ReloadRejected or ReloadUnchanged))
        {
            // A label value outside the documented set would break dashboards and alerts silently; fail the caller's test instead.
            throw new ArgumentOutOfRangeException(nameof(outcome), outcome, $"must be {ReloadApplied}, {ReloadRejected} or {ReloadUnchanged}");
        }

        _configReloads.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
    }
}
