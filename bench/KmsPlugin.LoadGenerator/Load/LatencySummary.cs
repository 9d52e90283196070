using System.Diagnostics;

namespace KmsPlugin.LoadGenerator.Load;

/// <summary>Latency percentiles of one phase, in milliseconds (nearest-rank: the smallest value with at least p of the samples at or below it).</summary>
internal sealed record LatencySummary(long Count, double P50, double P99, double P999, double Max)
{
    public static LatencySummary Empty { get; } = new(0, 0, 0, 0, 0);

    /// <summary>Summarises Stopwatch tick durations (the array is sorted in place).</summary>
    public static LatencySummary FromTicks(long[] ticks)
    {
        ArgumentNullException.ThrowIfNull(ticks);
        if (ticks.Length == 0)
        {
            return Empty;
        }

        Array.Sort(ticks);
        return new LatencySummary(ticks.Length, Percentile(ticks, 0.50), Percentile(ticks, 0.99), Percentile(ticks, 0.999), ToMilliseconds(ticks[^1]));
    }

    private static double Percentile(long[] sorted, double p)
    {
        var rank = (int)Math.Ceiling(p * sorted.Length);
        return ToMilliseconds(sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)]);
    }

    private static double ToMilliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}
