namespace KmsPlugin.LoadGenerator.Load;

/// <summary>What one load phase did: calls completed, failures by gRPC status (or "wrong-answer"), time, latency.</summary>
internal sealed record LoadResult(long Calls, long Errors, IReadOnlyDictionary<string, long> ErrorsByKind, TimeSpan Elapsed, LatencySummary Latency)
{
    public double Throughput => Elapsed > TimeSpan.Zero ? Calls / Elapsed.TotalSeconds : 0;
}
