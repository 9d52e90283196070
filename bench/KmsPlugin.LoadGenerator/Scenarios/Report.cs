using System.Globalization;
using System.Text;
using System.Text.Json;

namespace KmsPlugin.LoadGenerator.Scenarios;

/// <summary>Prints results as plain-text tables (invariant culture) and writes them as JSON.</summary>
internal static class Report
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static string Megabytes(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024.0):0.0} MB");

    public static string FormatErrors(IReadOnlyDictionary<string, long> errors) =>
        errors.Count == 0 ? "none" : string.Join(", ", errors.Select(e => $"{e.Key}: {e.Value}"));

    public static string FormatLoadRow(LoadRow row)
    {
        ArgumentNullException.ThrowIfNull(row);
        return string.Create(CultureInfo.InvariantCulture,
            $"{row.Method,-8} {row.Target,-10} {row.Throughput,9:0} calls/s  p50 {row.P50Ms,7:0.000} ms  p99 {row.P99Ms,7:0.000} ms  p99.9 {row.P999Ms,7:0.000} ms  "
            + $"server CPU {row.CpuMicrosPerCall,6:0.0} µs/call  errors {row.Errors}");
    }

    public static string FormatStormRow(StormRow row)
    {
        ArgumentNullException.ThrowIfNull(row);
        return string.Create(CultureInfo.InvariantCulture,
            $"storm {row.Mode,-6}: {row.Seeds} seeds ({row.DistinctKeks} KEKs), {row.RemoteUnwraps} remote unwraps + {row.RemoteWraps} wraps, "
            + $"wall {row.WallSeconds:0.000} s, p50 {row.P50Ms:0.0} ms, p99 {row.P99Ms:0.0} ms, errors {row.Errors}");
    }

    public static string FormatStatusCost(StatusCostReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        return string.Create(CultureInfo.InvariantCulture,
            $"status cost: {report.RemoteCalls} remote calls during {report.Calls} Status calls = {report.RemoteCallsPer1000:0.##} per 1,000 (errors {report.Errors})");
    }

    public static string Summary(BenchReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var text = new StringBuilder();
        void Line(FormattableString line) => text.AppendLine(line.ToString(CultureInfo.InvariantCulture));

        Line($"kms-plugin-bench {report.Date} on {report.Machine}");
        if (report.Startup is { } s)
        {
            Line($"");
            Line($"== process ({s.Plugin}) ==");
            Line($"start to ready: median {s.MedianReadyMs:0} ms (min {s.MinReadyMs:0}, max {s.MaxReadyMs:0}) over {s.Runs} runs");
            Line($"RSS idle: median {Megabytes(s.MedianIdleRssBytes)}");
        }

        if (report.Load is { } l)
        {
            Line($"");
            Line($"== hot path: 1 connection x {l.Streams} streams, {l.DurationSeconds:0.#} s per phase ({l.Plugin}) ==");
            Line($"{"method",-8} {"server",-10} {"calls/s",9}  {"p50",10}  {"p99",10}  {"p99.9",12}  {"server CPU per call",20}");
            foreach (var row in l.Rows)
            {
                text.AppendLine(FormatLoadRow(row));
            }

            foreach (var ratio in l.Ratios)
            {
                Line($"{ratio.Method,-8} plugin/no-op: throughput {ratio.ThroughputRatio:0.00}x, server CPU per call {ratio.CpuPerCallRatio:0.00}x");
            }

            Line($"plugin ready in {l.PluginReadyMs:0} ms; RSS idle {Megabytes(l.PluginRssIdleBytes)}, under load {Megabytes(l.PluginRssUnderLoadBytes)} (peak {Megabytes(l.PluginRssPeakBytes)}); no-op under load {Megabytes(l.NoopRssUnderLoadBytes)}");
        }

        if (report.StatusCost is { } c)
        {
            Line($"");
            Line($"== status cost ==");
            text.AppendLine(FormatStatusCost(c));
        }

        if (report.Storm is { } storm)
        {
            Line($"");
            Line($"== restart storm ==");
            Line($"{"mode",-7} {"seeds",6} {"KEKs",5} {"latency",8} {"conc.",5} {"remote calls",13} {"wall",9} {"calls/s",8} {"p50",9} {"p99",9} {"p99.9",9} {"errors",6}");
            foreach (var r in storm.Rows)
            {
                Line($"{r.Mode,-7} {r.Seeds,6} {r.DistinctKeks,5} {r.LatencyMs,6:0} ms {r.Concurrency,5} {r.RemoteUnwraps + r.RemoteWraps,13} {r.WallSeconds,7:0.000} s {r.Throughput,8:0} {r.P50Ms,6:0.0} ms {r.P99Ms,6:0.0} ms {r.P999Ms,6:0.0} ms {r.Errors,6}");
            }

            if (storm.WallRatio is { } ratio)
            {
                Line($"direct-wrap wall time / KEK wall time: {ratio:0.0}x");
            }
        }

        return text.ToString();
    }

    public static async Task WriteJsonAsync(string path, BenchReport report)
    {
        await using var file = File.Create(path);
        await JsonSerializer.SerializeAsync(file, report, Json);
    }

    public static BenchReport ReadJson(string path) =>
        JsonSerializer.Deserialize<BenchReport>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path} holds no report");
}
