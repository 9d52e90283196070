using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Grpc.Core;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Hosting;
using KmsPlugin.Protocol.V2;
using KmsPlugin.TestSupport;
using Xunit.Abstractions;

namespace KmsPlugin.Tests.EndToEnd;

/// <summary>
/// Issue 6: a 60 s outage of the remote root key, in fake time, against the real server over its socket with the
/// real background probe. The fake remote sits inside the circuit breaker (<see cref="ServerDependencies.DecorateRemote"/>),
/// so its call counters are the calls that really reached the remote.
/// </summary>
public sealed class CircuitBreakerOutageTests(ITestOutputHelper output)
{
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan Outage = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan Step = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan RealTimeLimit = TimeSpan.FromSeconds(30);
    private const string OutageReason = "remote KMS unreachable (injected outage)";

    /// <summary>
    /// The most remote calls a breaker lets through during <paramref name="window"/> of an outage that begins with the
    /// circuit closed, when callers make one call at a time: the threshold's worth to open it, then one trial each time
    /// the open interval (doubling after each failed trial, capped) ends inside the window. Opening later only
    /// moves the trials later, so fewer fit.
    /// </summary>
    private static (int Calls, List<TimeSpan> Trials) RemoteCallBound(CircuitBreakerOptions options, TimeSpan window)
    {
        var trials = new List<TimeSpan>();
        var at = TimeSpan.Zero;
        var interval = options.OpenInterval;
        while (at + interval <= window)
        {
            at += interval;
            trials.Add(at);
            interval = interval * 2 > options.MaxOpenInterval ? options.MaxOpenInterval : interval * 2;
        }

        return (options.FailureThreshold + trials.Count, trials);
    }

    private void Print(FormattableString line) => output.WriteLine(FormattableString.Invariant(line));

    [Fact]
    public async Task A_60_second_remote_outage_costs_a_bounded_number_of_remote_calls_and_the_plugin_recovers_without_restart()
    {
        var options = CircuitBreakerOptions.Default;
        var remote = new FakeRootKey("remote");
        using var dir = new TempDirectory();

        // Seeds stored before the outage by another plugin instance (an earlier run, another control-plane node): their
        // KEK is not in the cache of the plugin under test, so decrypting them needs the remote.
        var cold = new List<(byte[] Seed, EncryptResponse Stored)>();
        await using (var writer = await PluginHost.StartLocalAsync(dir, new ServerDependencies { DecorateRemote = _ => remote }))
        {
            for (var i = 0; i < 3; i++)
            {
                var seed = RandomNumberGenerator.GetBytes(32);
                cold.Add((seed, await writer.Apiserver.EncryptAsync(seed)));
            }
        }

        var time = new ObservableFakeTimeProvider(DateTimeOffset.Parse("2026-06-01T00:00:00Z", CultureInfo.InvariantCulture));
        var port = FreeTcpPort.Next();
        await using var plugin = await PluginHost.StartLocalAsync(dir, new ServerDependencies { Time = time, DecorateRemote = _ => remote },
            c => c with { Health = c.Health with { ListenHost = "127.0.0.1", ListenPort = port, ProbeInterval = ProbeInterval }, CircuitBreaker = options });
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
        var breaker = Assert.IsType<CircuitBreakerPolicy>(Assert.IsType<PolicyRootKey>(plugin.Ring.Primary).Policy).Breaker;

        // The probe loop arms a ProbeInterval timer after each probe; wait for it before moving the clock past the
        // next one, so the loop's schedule is exactly every ProbeInterval of fake time.
        var probes = 0;
        var nextProbe = await time.WaitForTimerAsync(ProbeInterval, probes++, RealTimeLimit) + ProbeInterval;
        async Task AdvanceAsync()
        {
            time.Advance(Step);
            if (time.GetUtcNow() >= nextProbe)
            {
                nextProbe = await time.WaitForTimerAsync(ProbeInterval, probes++, RealTimeLimit) + ProbeInterval;
            }
        }

        Assert.Equal("ok", (await plugin.Apiserver.StatusAsync()).Healthz);
        var warm = new List<(byte[] Seed, EncryptResponse Stored)>();
        for (var i = 0; i < 3; i++)
        {
            var seed = RandomNumberGenerator.GetBytes(32);
            warm.Add((seed, await plugin.Apiserver.EncryptAsync(seed)));
            Assert.Equal(seed, await plugin.Apiserver.DecryptAsync(warm[^1].Stored));
        }

        // The outage: every call that reaches the remote fails for 60 s of fake time.
        var callsBefore = remote.Wraps + remote.Unwraps;
        var probesBefore = probes;
        var outageStart = time.GetUtcNow();
        remote.Failure = new KmsPluginException(KmsErrorKind.RootKeyUnavailable, OutageReason);
        var (served, uncachedAttempts, failedFast) = (0, 0, 0);
        TimeSpan? unhealthyAfter = null;
        var reasons = new HashSet<string>(StringComparer.Ordinal);
        while (true)
        {
            var elapsed = time.GetUtcNow() - outageStart;

            // Cached KEKs keep working: a new Encrypt, its Decrypt, and a Decrypt of data sealed before the outage.
            var seed = RandomNumberGenerator.GetBytes(32);
            var fresh = await plugin.Apiserver.EncryptAsync(seed);
            Assert.Equal(seed, await plugin.Apiserver.DecryptAsync(fresh));
            var old = warm[(int)elapsed.TotalSeconds % warm.Count];
            Assert.Equal(old.Seed, await plugin.Apiserver.DecryptAsync(old.Stored));
            served += 3;

            // An uncached Decrypt fails with Unavailable and the reason. When the outage begins the apiserver keeps
            // retrying (one call at a time here) until the circuit opens; after that one attempt per second.
            do
            {
                uncachedAttempts++;
                var error = await Assert.ThrowsAsync<RpcException>(() => plugin.Apiserver.DecryptAsync(cold[uncachedAttempts % cold.Count].Stored));
                Assert.Equal(StatusCode.Unavailable, error.StatusCode);
                Assert.Contains(OutageReason, error.Status.Detail, StringComparison.Ordinal);
                if (error.Status.Detail.Contains("circuit open", StringComparison.Ordinal))
                {
                    failedFast++;
                    Assert.Contains("root key 'remote' circuit open after", error.Status.Detail, StringComparison.Ordinal);
                }
            }
            while (breaker.State == CircuitState.Closed);

            var status = await plugin.Apiserver.StatusAsync();
            if (status.Healthz != "ok")
            {
                unhealthyAfter ??= elapsed;
                Assert.Contains("root key 'remote' (fake)", status.Healthz, StringComparison.Ordinal);
                Assert.Contains(OutageReason, status.Healthz, StringComparison.Ordinal);
                reasons.Add(status.Healthz);
                using var ready = await http.GetAsync(new Uri("readyz", UriKind.Relative));
                Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            }

            using (var live = await http.GetAsync(new Uri("livez", UriKind.Relative)))
            {
                Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            }

            if (elapsed >= Outage)
            {
                break;
            }

            await AdvanceAsync();
        }

        var remoteCalls = remote.Wraps + remote.Unwraps - callsBefore;
        var probesDuring = probes - probesBefore;
        var (bound, trials) = RemoteCallBound(options, Outage);
        var trialTimes = string.Join(", ", trials.Select(t => FormattableString.Invariant($"+{t.TotalSeconds}s")));
        Print($"circuitBreaker: failureThreshold {options.FailureThreshold}, openInterval {options.OpenInterval.TotalSeconds}s, maxOpenInterval {options.MaxOpenInterval.TotalSeconds}s; health.probeInterval {ProbeInterval.TotalSeconds}s; fake clock advanced in {Step.TotalSeconds}s steps");
        Print($"remote calls during the {Outage.TotalSeconds}s outage: {remoteCalls} (bound {bound} = {options.FailureThreshold} to open + {trials.Count} half-open trials at {trialTimes})");
        Print($"without the breaker at least {uncachedAttempts + probesDuring}: {uncachedAttempts} uncached Decrypts + {probesDuring} probes (and each provider retries a transient failure up to 3 times)");
        Print($"client calls on cached KEKs served: {served}/{served}; uncached Decrypts: {uncachedAttempts} failed with Unavailable, {failedFast} of them fast without a remote call");
        Print($"Status healthz unhealthy {unhealthyAfter?.TotalSeconds}s after the outage began; reasons seen: {string.Join(" | ", reasons.Take(2))}");

        Assert.Equal(bound, remoteCalls);
        Assert.NotNull(unhealthyAfter);
        Assert.True(unhealthyAfter <= ProbeInterval, $"Status reported the outage {unhealthyAfter} after it began, more than one probe interval");
        Assert.Contains(reasons, r => r.Contains("circuit open", StringComparison.Ordinal));

        // The remote comes back. The circuit is open for at most MaxOpenInterval more; then the probe (or the next
        // Decrypt) is the trial, it succeeds, and uncached Decrypts work again in the same process.
        remote.Failure = null;
        var outageEnd = time.GetUtcNow();
        TimeSpan? recoveredAfter = null;
        while (recoveredAfter is null)
        {
            Assert.True(time.GetUtcNow() - outageEnd <= options.MaxOpenInterval, "the circuit did not close within maxOpenInterval of the remote recovering");
            await AdvanceAsync();
            try
            {
                Assert.Equal(cold[0].Seed, await plugin.Apiserver.DecryptAsync(cold[0].Stored));
                recoveredAfter = time.GetUtcNow() - outageEnd;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
            {
                Assert.Contains("circuit open", e.Status.Detail, StringComparison.Ordinal);
            }
        }

        Assert.Equal(CircuitState.Closed, breaker.State);
        foreach (var (seed, stored) in cold)
        {
            Assert.Equal(seed, await plugin.Apiserver.DecryptAsync(stored));
        }

        for (var i = 0; (await plugin.Apiserver.StatusAsync()).Healthz != "ok"; i++)
        {
            Assert.True(i * Step <= ProbeInterval, "Status did not return to ok within one probe interval of recovery");
            await AdvanceAsync();
        }

        using (var ready = await http.GetAsync(new Uri("readyz", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }

        Print($"recovered {recoveredAfter?.TotalSeconds}s after the remote came back (circuit closed by a trial call), without restart");
    }
}
