using System.Diagnostics;
using System.Security.Cryptography;
using KmsPlugin.LoadGenerator.Load;
using KmsPlugin.LoadGenerator.Processes;
using KmsPlugin.Protocol.V2;

namespace KmsPlugin.LoadGenerator.Scenarios;

internal sealed record StormOptions(int Seeds, int Keks, TimeSpan Latency, int Concurrency, IReadOnlyList<string> Modes);

/// <summary>
/// The restart storm: <c>Seeds</c> stored seeds written through the plugin (in KEK mode under exactly <c>Keks</c> KEKs,
/// using kek.maxUses = Seeds / Keks), then a fresh plugin process — empty cache, cold JIT — decrypts every one of them
/// in random order with <c>Concurrency</c> concurrent calls on one connection, the root key answering after the
/// injected latency. Run once per envelope mode: <c>kek</c> (the local KEK hierarchy) and <c>direct</c> (every seed
/// wrapped by the root key, as the existing Go plugins do). Every decrypted seed is compared with the original.
/// </summary>
internal static class RestartStormScenario
{
    /// <summary>Writing the seeds is set-up, not the measurement: it runs at least this concurrent whatever --concurrency says.</summary>
    private const int SeedingConcurrency = 64;

    public static async Task<StormReport> RunAsync(StormOptions options, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        if (options.Keks < 1 || options.Seeds < options.Keks)
        {
            throw new ArgumentException("need at least one KEK and at least as many seeds as KEKs");
        }

        var rows = new List<StormRow>();
        foreach (var mode in options.Modes)
        {
            var row = await RunModeAsync(options, mode);
            rows.Add(row);
            await log.WriteLineAsync(Report.FormatStormRow(row));
        }

        return new StormReport(rows);
    }

    private static async Task<StormRow> RunModeAsync(StormOptions options, string mode)
    {
        using var directory = new BenchDirectory();
        var maxUses = (long)Math.Ceiling(options.Seeds / (double)options.Keks);
        var config = LatencyPluginProcess.WriteConfig(directory, mode, maxUses);
        var seeds = new byte[options.Seeds][];
        var stored = new EncryptResponse[options.Seeds];

        // Before the restart: the apiserver writes N objects (in KMS v2 each distinct seed is one Encrypt).
        var seeding = Stopwatch.StartNew();
        RemoteCounts seedingCalls;
        await using (var writer = await LatencyPluginProcess.StartAsync(directory, config, options.Latency))
        {
            using var target = new KmsTarget("plugin", writer.SocketPath);
            var before = await writer.CountsAsync();
            var result = await LoadPhase.RunAsync(Math.Max(options.Concurrency, SeedingConcurrency), null, options.Seeds, async (_, n) =>
            {
                var seed = RandomNumberGenerator.GetBytes(32);
                var response = await target.EncryptAsync(KmsTarget.NewEncryptRequest(seed));
                seeds[n] = seed;
                stored[n] = response;
                return response.Ciphertext.Length > 0;
            });
            if (result.Errors > 0)
            {
                throw new InvalidOperationException($"{mode}: {result.Errors} Encrypt calls failed while writing the seeds ({Report.FormatErrors(result.ErrorsByKind)})");
            }

            seedingCalls = await writer.CountsAsync() - before;
            await writer.StopAsync();
        }

        seeding.Stop();
        var distinctKeks = stored.SelectMany(s => s.Annotations.Values).Select(v => Convert.ToBase64String(v.Span)).Distinct(StringComparer.Ordinal).Count();

        // The restart: a fresh process, then every stored seed decrypted in random order at the apiserver's concurrency.
        var order = Enumerable.Range(0, options.Seeds).ToArray();
        RandomNumberGenerator.Shuffle(order.AsSpan());
        var requests = order.Select(i => KmsTarget.DecryptRequestFor(stored[i])).ToArray();
        await using var reader = await LatencyPluginProcess.StartAsync(directory, config, options.Latency);
        try
        {
            using var target = new KmsTarget("plugin", reader.SocketPath);
            var before = await reader.CountsAsync();
            var storm = await LoadPhase.RunAsync(options.Concurrency, null, options.Seeds, async (_, n) =>
            {
                var response = await target.DecryptAsync(requests[n]);
                return response.Plaintext.Span.SequenceEqual(seeds[order[n]]);
            });
            var calls = await reader.CountsAsync() - before;
            return new StormRow(mode, options.Seeds, options.Keks, distinctKeks, options.Latency.TotalMilliseconds, options.Concurrency, calls.Unwraps, calls.Wraps,
                storm.Elapsed.TotalSeconds, storm.Throughput, storm.Latency.P50, storm.Latency.P99, storm.Latency.P999, storm.Errors, storm.ErrorsByKind,
                seeding.Elapsed.TotalSeconds, seedingCalls.Calls, reader.Ready.TotalMilliseconds);
        }
        finally
        {
            await reader.StopAsync();
        }
    }
}
