using System.Collections.Concurrent;
using System.Diagnostics;
using Grpc.Core;

namespace KmsPlugin.LoadGenerator.Load;

/// <summary>
/// Drives one kind of call the way kube-apiserver does: a fixed number of concurrent streams over one HTTP/2
/// connection, each issuing its next call as soon as the previous one answers, until a duration or a total call count
/// is reached. Every call's latency is kept (per stream, merged at the end) for exact percentiles.
/// </summary>
internal static class LoadPhase
{
    /// <summary>One call: stream index and the call's global sequence number. Returns false for a wrong answer.</summary>
    public delegate Task<bool> Call(int stream, long sequence);

    public static async Task<LoadResult> RunAsync(int streams, TimeSpan? duration, long? totalCalls, Call call)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(streams);
        ArgumentNullException.ThrowIfNull(call);
        if (duration is null && totalCalls is null)
        {
            throw new ArgumentException("a duration or a call count is required");
        }

        var errors = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        var latencies = new List<long>[streams];
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        long sequence = -1;
        long stopAt = long.MaxValue;
        var workers = new Task[streams];
        for (var s = 0; s < streams; s++)
        {
            var stream = s;
            latencies[stream] = new List<long>(4096);
            workers[stream] = Task.Run(async () =>
            {
                await start.Task;
                var mine = latencies[stream];
                while (true)
                {
                    var n = Interlocked.Increment(ref sequence);
                    if ((totalCalls is { } total && n >= total) || Stopwatch.GetTimestamp() >= Volatile.Read(ref stopAt))
                    {
                        return;
                    }

                    var began = Stopwatch.GetTimestamp();
                    try
                    {
                        if (!await call(stream, n))
                        {
                            errors.AddOrUpdate("wrong-answer", 1, (_, v) => v + 1);
                        }
                    }
                    catch (RpcException e)
                    {
                        errors.AddOrUpdate(e.StatusCode.ToString(), 1, (_, v) => v + 1);
                        continue;
                    }

                    mine.Add(Stopwatch.GetTimestamp() - began);
                }
            });
        }

        var begin = Stopwatch.GetTimestamp();
        if (duration is { } d)
        {
            Volatile.Write(ref stopAt, begin + (long)(d.TotalSeconds * Stopwatch.Frequency));
        }

        start.SetResult();
        await Task.WhenAll(workers);
        var elapsed = Stopwatch.GetElapsedTime(begin);

        var all = latencies.SelectMany(l => l).ToArray();
        var errorCount = errors.Values.Sum();
        return new LoadResult(all.Length, errorCount, new SortedDictionary<string, long>(errors, StringComparer.Ordinal), elapsed, LatencySummary.FromTicks(all));
    }
}
