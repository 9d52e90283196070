using Grpc.Core;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Azure.Tests;

/// <summary>
/// Faults injected into the fake vault's unwrapkey, seen through the plugin's socket: the gRPC code, the number of
/// attempts the shared retry policy made (default 3), the healthz reason, cached-KEK traffic unaffected throughout,
/// and recovery once the fault clears.
/// </summary>
public sealed class FaultTests
{
    /// <summary>A test bed whose key has one version.</summary>
    private static async Task<AzureTestBed> StartBedAsync()
    {
        var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        return bed;
    }

    /// <summary>A plugin whose own KEK is cached, plus a ciphertext from an earlier plugin whose KEK it must unwrap remotely.</summary>
    private static Task<StoredCiphertextScenario> ScenarioAsync(AzureTestBed bed) =>
        StoredCiphertextScenario.StartAsync(() => bed.PluginConfig(bed.RootKeyYaml()));

    [Theory]
    [InlineData("503 always: retried, then Unavailable", FaultAction.Error, 503, "ServiceUnavailable", null, null, int.MaxValue, StatusCode.Unavailable, 3, "HTTP 503")]
    [InlineData("500 twice: retried, then success", FaultAction.Error, 500, "InternalServerError", null, null, 2, StatusCode.OK, 3, null)]
    [InlineData("429 with Retry-After 0 once: honoured, then success", FaultAction.Error, 429, "Throttled", null, "0", 1, StatusCode.OK, 2, null)]
    [InlineData("429 always: retried, then ResourceExhausted", FaultAction.Error, 429, "Throttled", null, null, int.MaxValue, StatusCode.ResourceExhausted, 3, "HTTP 429")]
    [InlineData("429 with a Retry-After past the retry budget: reported at once", FaultAction.Error, 429, "Throttled", null, "30", int.MaxValue, StatusCode.ResourceExhausted, 1, "HTTP 429")]
    [InlineData("403 permission denied: not retried", FaultAction.Error, 403, "Forbidden", "ForbiddenByRbac", null, int.MaxValue, StatusCode.FailedPrecondition, 1, "ForbiddenByRbac")]
    [InlineData("403 disabled key: not retried", FaultAction.Error, 403, "Forbidden", "KeyDisabled", null, int.MaxValue, StatusCode.FailedPrecondition, 1, "disabled")]
    [InlineData("404 key deleted: not retried", FaultAction.Error, 404, "KeyNotFound", null, null, int.MaxValue, StatusCode.FailedPrecondition, 1, "KeyNotFound")]
    [InlineData("a corrupted unwrap result: DataLoss", FaultAction.CorruptResult, 200, null, null, null, int.MaxValue, StatusCode.DataLoss, 1, "digest mismatch")]
    [InlineData("a truncated unwrap result: DataLoss", FaultAction.TruncateResult, 200, null, null, null, int.MaxValue, StatusCode.DataLoss, 1, "digest mismatch")]
    public async Task An_injected_vault_fault_maps_to_its_gRPC_code_with_bounded_retries_while_cached_KEKs_keep_serving(
        string scenario, FaultAction action, int status, string? code, string? innerCode, string? retryAfter, int times,
        StatusCode expected, int expectedRequests, string? reasonFragment)
    {
        Assert.NotEmpty(scenario);
        await using var bed = await StartBedAsync();
        var fault = new Fault { Operation = "unwrapkey", Action = action, Status = status, Code = code, InnerCode = innerCode, RetryAfter = retryAfter, Times = times };
        await RemoteFaultScenario.RunAsync(() => bed.PluginConfig(bed.RootKeyYaml()),
            RemoteUnwrapFault.Planned("akv", bed.Vault.Faults, fault, () => bed.Vault.Requests("unwrapkey"), tokenPrefix: "fake-at-"), expected, expectedRequests, reasonFragment);
    }

    [Fact]
    public async Task Throttling_is_visible_in_metrics_by_provider_and_outcome()
    {
        await using var bed = await StartBedAsync();
        await RemoteThrottlingScenario.RunAsync(port => PluginYaml.Parse(bed.Directory, [bed.RootKeyYaml()], port), new RemoteThrottling
        {
            Provider = "azure",
            Throttle = () => bed.Vault.Faults.Add(new Fault { Operation = "unwrapkey", Status = 429, Code = "Throttled" }),
            Clear = bed.Vault.Faults.Clear,
            UnwrapRequests = () => bed.Vault.Requests("unwrapkey"),
        });
    }

    [Fact]
    public async Task A_revoked_token_is_re_acquired_once_and_a_second_401_is_FailedPrecondition()
    {
        await using var bed = await StartBedAsync();
        await using var s = await ScenarioAsync(bed);
        bed.Vault.RevokeTokens();
        var before = bed.Vault.Requests("unwrapkey");

        var error = await Assert.ThrowsAsync<RpcException>(() => s.Plugin.Apiserver.DecryptAsync(s.Stored));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("HTTP 401", error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("freshly acquired token", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(2, bed.Vault.Requests("unwrapkey") - before);
        await s.AssertCachedTrafficWorksAsync();
    }

    [Fact]
    public async Task A_claims_challenge_after_revocation_gets_a_fresh_token_and_the_call_succeeds()
    {
        await using var bed = await StartBedAsync();
        await using var s = await ScenarioAsync(bed);
        bed.Vault.ClaimsChallenge = true;
        bed.Vault.RevokeTokens();
        var unwrapsBefore = bed.Vault.Requests("unwrapkey");
        var tokensBefore = bed.Vault.TokenRequests.Count;

        Assert.Equal(s.StoredSeed, await s.Plugin.Apiserver.DecryptAsync(s.Stored));

        Assert.Equal(2, bed.Vault.Requests("unwrapkey") - unwrapsBefore);
        var renewal = Assert.Single(bed.Vault.TokenRequests.Skip(tokensBefore));
        Assert.Contains("nbf", renewal.GetValueOrDefault("claims") ?? "", StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_Entra_ID_outage_while_the_token_must_be_renewed_is_Unavailable_after_bounded_retries()
    {
        await using var bed = await StartBedAsync();
        await using var s = await ScenarioAsync(bed);
        bed.Vault.ClaimsChallenge = true; // forces a token request on the next call
        bed.Vault.RevokeTokens();
        bed.Vault.Faults.Add(new Fault { Operation = "token", Status = 503, Code = "temporarily_unavailable" });
        var tokensBefore = bed.Vault.TokenRequests.Count;

        var error = await Assert.ThrowsAsync<RpcException>(() => s.Plugin.Apiserver.DecryptAsync(s.Stored));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains("Entra ID token request failed", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(3, bed.Vault.TokenRequests.Count - tokensBefore);
        await s.AssertCachedTrafficWorksAsync();
    }
}
