using Grpc.Core;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Gcp.Tests;

/// <summary>
/// Faults injected into the fake Cloud KMS's unwrapkey, seen through the plugin's socket: the gRPC code, the number of
/// attempts the shared retry policy made (default 3), the healthz reason, cached-KEK traffic unaffected throughout,
/// and recovery once the fault clears.
/// </summary>
public sealed class FaultTests
{
    /// <summary>A test bed whose key has one version.</summary>
    private static async Task<GcpTestBed> StartBedAsync()
    {
        var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        return bed;
    }

    /// <summary>A plugin whose own KEK is cached, plus a ciphertext from an earlier plugin whose KEK it must unwrap remotely.</summary>
    private static Task<StoredCiphertextScenario> ScenarioAsync(GcpTestBed bed) =>
        StoredCiphertextScenario.StartAsync(() => bed.PluginConfig(bed.RootKeyYaml()));

    [Theory]
    [InlineData("503 UNAVAILABLE always: retried, then Unavailable", FaultAction.Error, 503, "UNAVAILABLE", null, int.MaxValue, StatusCode.Unavailable, 3, "UNAVAILABLE")]
    [InlineData("500 INTERNAL twice: retried, then success", FaultAction.Error, 500, "INTERNAL", null, 2, StatusCode.OK, 3, null)]
    [InlineData("429 with Retry-After 0 once: honoured, then success", FaultAction.Error, 429, "RESOURCE_EXHAUSTED", "0", 1, StatusCode.OK, 2, null)]
    [InlineData("429 RESOURCE_EXHAUSTED always: retried, then ResourceExhausted", FaultAction.Error, 429, "RESOURCE_EXHAUSTED", null, int.MaxValue, StatusCode.ResourceExhausted, 3, "RESOURCE_EXHAUSTED")]
    [InlineData("429 with a Retry-After past the retry budget: reported at once", FaultAction.Error, 429, "RESOURCE_EXHAUSTED", "30", int.MaxValue, StatusCode.ResourceExhausted, 1, "RESOURCE_EXHAUSTED")]
    [InlineData("403 PERMISSION_DENIED: not retried", FaultAction.Error, 403, "PERMISSION_DENIED", null, int.MaxValue, StatusCode.FailedPrecondition, 1, "PERMISSION_DENIED")]
    [InlineData("400 FAILED_PRECONDITION (disabled version): not retried", FaultAction.Error, 400, "FAILED_PRECONDITION", null, int.MaxValue, StatusCode.FailedPrecondition, 1, "disabled")]
    [InlineData("404 NOT_FOUND: not retried", FaultAction.Error, 404, "NOT_FOUND", null, int.MaxValue, StatusCode.FailedPrecondition, 1, "NOT_FOUND")]
    [InlineData("a wrong plaintextCrc32c: DataLoss", FaultAction.CorruptResult, 200, null, null, int.MaxValue, StatusCode.DataLoss, 1, "plaintextCrc32c")]
    [InlineData("a truncated plaintext: DataLoss", FaultAction.TruncateResult, 200, null, null, int.MaxValue, StatusCode.DataLoss, 1, "plaintextCrc32c")]
    public async Task An_injected_Cloud_KMS_fault_maps_to_its_gRPC_code_with_bounded_retries_while_cached_KEKs_keep_serving(
        string scenario, FaultAction action, int status, string? code, string? retryAfter, int times,
        StatusCode expected, int expectedRequests, string? reasonFragment)
    {
        Assert.NotEmpty(scenario);
        await using var bed = await StartBedAsync();
        var fault = new Fault { Operation = "decrypt", Action = action, Status = status, Code = code, RetryAfter = retryAfter, Times = times };
        await RemoteFaultScenario.RunAsync(() => bed.PluginConfig(bed.RootKeyYaml()),
            RemoteUnwrapFault.Planned("gcpkms", bed.Kms.Faults, fault, () => bed.Kms.Requests("decrypt"), tokenPrefix: "ya29."), expected, expectedRequests, reasonFragment);
    }

    [Fact]
    public async Task Throttling_is_visible_in_metrics_by_provider_and_outcome()
    {
        await using var bed = await StartBedAsync();
        await RemoteThrottlingScenario.RunAsync(port => PluginYaml.Parse(bed.Directory, [bed.RootKeyYaml()], port), new RemoteThrottling
        {
            Provider = "gcp",
            Throttle = () => bed.Kms.Faults.Add(new Fault { Operation = "decrypt", Status = 429, Code = "RESOURCE_EXHAUSTED" }),
            Clear = bed.Kms.Faults.Clear,
            UnwrapRequests = () => bed.Kms.Requests("decrypt"),
        });
    }

    [Fact]
    public async Task A_revoked_token_is_FailedPrecondition_without_retries()
    {
        await using var bed = await StartBedAsync();
        await using var s = await ScenarioAsync(bed);
        bed.Kms.RevokeTokens();
        var before = bed.Kms.Requests("decrypt");

        var error = await Assert.ThrowsAsync<RpcException>(() => s.Plugin.Apiserver.DecryptAsync(s.Stored));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("UNAUTHENTICATED", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(1, bed.Kms.Requests("decrypt") - before);
        await s.AssertCachedTrafficWorksAsync();
    }
}
