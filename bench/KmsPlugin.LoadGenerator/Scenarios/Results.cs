namespace KmsPlugin.LoadGenerator.Scenarios;

// The figures each scenario reports: printed as tables and written as JSON (--json FILE). Times in ms unless named.

internal sealed record LoadRow(string Method, string Target, int Streams, long Calls, long Errors, IReadOnlyDictionary<string, long> ErrorsByKind,
    double Seconds, double Throughput, double P50Ms, double P99Ms, double P999Ms, double? CpuMicrosPerCall);

internal sealed record LoadRatio(string Method, double ThroughputRatio, double? CpuPerCallRatio);

internal sealed record LoadReport(string Plugin, int Streams, double DurationSeconds, IReadOnlyList<LoadRow> Rows, IReadOnlyList<LoadRatio> Ratios,
    double PluginReadyMs, long PluginRssIdleBytes, long PluginRssUnderLoadBytes, long PluginRssPeakBytes, long NoopRssUnderLoadBytes)
{
    public long TotalErrors => Rows.Sum(r => r.Errors);
}

internal sealed record StormRow(string Mode, int Seeds, int Keks, int DistinctKeks, double LatencyMs, int Concurrency, long RemoteUnwraps, long RemoteWraps,
    double WallSeconds, double Throughput, double P50Ms, double P99Ms, double P999Ms, long Errors, IReadOnlyDictionary<string, long> ErrorsByKind,
    double SeedingSeconds, long SeedingRemoteCalls, double ReadyMs);

internal sealed record StormReport(IReadOnlyList<StormRow> Rows)
{
    /// <summary>Direct-wrap wall time over KEK wall time (how many times shorter the KEK hierarchy's storm is).</summary>
    public double? WallRatio =>
        Rows.FirstOrDefault(r => r.Mode == "kek") is { } kek && Rows.FirstOrDefault(r => r.Mode == "direct") is { } direct && kek.WallSeconds > 0
            ? direct.WallSeconds / kek.WallSeconds
            : null;
}

internal sealed record StatusCostReport(long Calls, long RemoteCalls, double RemoteCallsPer1000, long Errors);

internal sealed record StartupReport(string Plugin, int Runs, double MedianReadyMs, double MinReadyMs, double MaxReadyMs, long MedianIdleRssBytes,
    IReadOnlyList<double> ReadyMs, IReadOnlyList<long> IdleRssBytes);

internal sealed record BenchReport(string Date, string Machine, StartupReport? Startup, LoadReport? Load, StatusCostReport? StatusCost, StormReport? Storm);
