using Grpc.Core;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Grpc;
using Xunit;

namespace KmsPlugin.TestSupport;

/// <summary>How a provider's wire fake throttles unwraps, for <see cref="RemoteThrottlingScenario"/>.</summary>
public sealed record RemoteThrottling
{
    /// <summary>The <c>provider</c> label of the root key in the plugin's metrics (<c>aws</c>, <c>azure</c>, <c>gcp</c>, <c>vault</c>).</summary>
    public required string Provider { get; init; }

    /// <summary>From now on every unwrap (decrypt) request is answered with the backend's own throttling error.</summary>
    public required Action Throttle { get; init; }

    /// <summary>The backend answers normally again.</summary>
    public required Action Clear { get; init; }

    /// <summary>Unwrap (decrypt) requests the backend has received, throttled or not.</summary>
    public required Func<int> UnwrapRequests { get; init; }
}

/// <summary>
/// A backend that throttles, as an operator sees it on <c>/metrics</c> (docs/metrics.md): a Decrypt whose KEK is not
/// cached makes one root-key unwrap, which the provider retries up to its retry policy's bound against the throttling
/// backend and then reports as <see cref="KmsErrorKind.Throttled"/>; the apiserver gets the gRPC code
/// <see cref="GrpcErrorMapping"/> gives Throttled; <c>kms_plugin_root_key_requests_total</c> counts that unwrap under
/// <c>outcome="throttled"</c> for the provider, and <c>kms_plugin_grpc_requests_total</c> the Decrypt under that code.
/// </summary>
public static class RemoteThrottlingScenario
{
    private const string RootKeyRequests = "kms_plugin_root_key_requests_total";
    private const string GrpcRequests = "kms_plugin_grpc_requests_total";
    private const string RootKeyAttempts = "kms_plugin_root_key_attempts_total";

    /// <param name="configure">A plugin configuration with the provider's root key and <c>health.listen</c> on the given port (a fresh socket per call).</param>
    /// <param name="backend">How the fake throttles and counts unwraps.</param>
    public static async Task RunAsync(Func<int, PluginConfig> configure, RemoteThrottling backend)
    {
        ArgumentNullException.ThrowIfNull(configure);
        ArgumentNullException.ThrowIfNull(backend);
        var healthPort = FreeTcpPort.Next();
        await using var s = await StoredCiphertextScenario.StartAsync(() => configure(healthPort));
        var expectedCode = GrpcErrorMapping.ToStatusCode(KmsErrorKind.Throttled);
        var scrape = await PrometheusScrape.GetAsync(healthPort);
        var throttledBefore = scrape.Sum(RootKeyRequests, Unwrap(backend, "throttled"));
        var attemptsBefore = scrape.Sum(RootKeyAttempts, Unwrap(backend, "throttled"));
        var okBefore = scrape.Sum(RootKeyRequests, Unwrap(backend, "ok"));
        var requestsBefore = backend.UnwrapRequests();
        backend.Throttle();

        var error = await Assert.ThrowsAsync<RpcException>(() => s.Plugin.Apiserver.DecryptAsync(s.Stored));

        Assert.Equal(expectedCode, error.StatusCode);
        var attempts = backend.UnwrapRequests() - requestsBefore;
        Assert.Equal(RetryPolicy.Default.MaxAttempts, attempts); // retried, and bounded by the policy
        scrape = await PrometheusScrape.GetAsync(healthPort);

        // One root-key unwrap made by that Decrypt, its retries included (the duration histogram spans them).
        Assert.Equal(1, scrape.Sum(RootKeyRequests, Unwrap(backend, "throttled")) - throttledBefore);
        Assert.Equal(1, scrape.Value("kms_plugin_root_key_request_duration_seconds_count", Unwrap(backend, "throttled")));

        // Each try the retry policy made is counted too: exactly the requests the backend saw.
        Assert.Equal(attempts, scrape.Sum(RootKeyAttempts, Unwrap(backend, "throttled")) - attemptsBefore);
        var failedDecrypts = scrape.All(GrpcRequests, ("api", "v2"), ("method", "Decrypt")).Where(sample => sample.Labels["code"] != "OK").ToList();
        var failed = Assert.Single(failedDecrypts);
        Assert.Equal(expectedCode.ToString(), failed.Labels["code"]);
        Assert.Equal(1, failed.Value);

        // Cached KEKs kept serving; once the backend stops throttling, one unwrap fills the cache.
        await s.AssertCachedTrafficWorksAsync();
        backend.Clear();
        Assert.Equal(s.StoredSeed, await s.Plugin.Apiserver.DecryptAsync(s.Stored));
        scrape = await PrometheusScrape.GetAsync(healthPort);
        Assert.Equal(1, scrape.Sum(RootKeyRequests, Unwrap(backend, "ok")) - okBefore);
        Assert.Equal(1, scrape.Sum(RootKeyRequests, Unwrap(backend, "throttled")) - throttledBefore);
    }

    private static (string, string)[] Unwrap(RemoteThrottling backend, string outcome) =>
        [("provider", backend.Provider), ("operation", "unwrap"), ("outcome", outcome)];
}
