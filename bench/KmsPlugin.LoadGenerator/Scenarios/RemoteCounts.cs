using System.Globalization;

namespace KmsPlugin.LoadGenerator.Scenarios;

/// <summary>A snapshot of a latency-plugin child's root-key calls (its <c>counts</c> answer).</summary>
internal readonly record struct RemoteCounts(long Wraps, long Unwraps, long InFlight, bool Healthy)
{
    public long Calls => Wraps + Unwraps;

    /// <summary>Parses <c>counts wraps=W unwraps=U inflight=I healthy=true|false</c>.</summary>
    public static RemoteCounts Parse(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(f => f.Split('=', 2))
            .ToDictionary(kv => kv[0], kv => kv[1], StringComparer.Ordinal);
        return new RemoteCounts(
            long.Parse(fields["wraps"], CultureInfo.InvariantCulture),
            long.Parse(fields["unwraps"], CultureInfo.InvariantCulture),
            long.Parse(fields["inflight"], CultureInfo.InvariantCulture),
            fields["healthy"] == "true");
    }

    public static RemoteCounts operator -(RemoteCounts after, RemoteCounts before) =>
        new(after.Wraps - before.Wraps, after.Unwraps - before.Unwraps, after.InFlight, after.Healthy);

    public static RemoteCounts Subtract(RemoteCounts after, RemoteCounts before) => after - before;
}
