using System.Security.Cryptography;
using Grpc.Core;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Protocol.V2;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Gcp.Tests;

/// <summary>
/// Faults injected into the fake Cloud KMS's unwrapkey, seen through the plugin's socket: the gRPC code, the number of
/// attempts the shared retry policy made (default 3), the healthz reason, cached-KEK traffic unaffected throughout,
/// and recovery once the fault clears.
/// </summary>
public sealed class FaultTests
{
    /// <summary>A plugin whose own KEK is cached, plus a ciphertext from an earlier plugin whose KEK it must unwrap remotely.</summary>
    private sealed class Scenario : IAsyncDisposable
    {
        private Scenario(GcpTestBed bed, PluginHost plugin, byte[] storedSeed, EncryptResponse stored, byte[] cachedSeed, EncryptResponse cached)
        {
            Bed = bed;
            Plugin = plugin;
            StoredSeed = storedSeed;
            Stored = stored;
            CachedSeed = cachedSeed;
            Cached = cached;
        }

        public GcpTestBed Bed { get; }

        public PluginHost Plugin { get; }

        public byte[] StoredSeed { get; }

        public EncryptResponse Stored { get; }

        public byte[] CachedSeed { get; }

        public EncryptResponse Cached { get; }

        public static async Task<Scenario> StartAsync()
        {
            var bed = await GcpTestBed.StartAsync();
            bed.Kms.AddVersion();
            var storedSeed = RandomNumberGenerator.GetBytes(32);
            EncryptResponse stored;
            await using (var writer = await PluginHost.StartAsync(bed.PluginConfig(bed.RootKeyYaml())))
            {
                stored = await writer.Apiserver.EncryptAsync(storedSeed);
            }

            var plugin = await PluginHost.StartAsync(bed.PluginConfig(bed.RootKeyYaml()));
            await plugin.WaitForProbeAsync();
            var cachedSeed = RandomNumberGenerator.GetBytes(32);
            var cached = await plugin.Apiserver.EncryptAsync(cachedSeed);
            return new Scenario(bed, plugin, storedSeed, stored, cachedSeed, cached);
        }

        public async Task AssertCachedTrafficWorksAsync()
        {
            Assert.Equal(CachedSeed, await Plugin.Apiserver.DecryptAsync(Cached));
            var seed = RandomNumberGenerator.GetBytes(32);
            Assert.Equal(seed, await Plugin.Apiserver.DecryptAsync(await Plugin.Apiserver.EncryptAsync(seed)));
        }

        public async Task<string> ProbeHealthzAsync()
        {
            await Plugin.App.Services.GetRequiredService<RootKeyHealthMonitor>().ProbeOnceAsync(CancellationToken.None);
            return (await Plugin.Apiserver.StatusAsync()).Healthz;
        }

        public async ValueTask DisposeAsync()
        {
            await Plugin.DisposeAsync();
            await Bed.DisposeAsync();
        }
    }

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
        await using var s = await Scenario.StartAsync();
        s.Bed.Kms.Faults.Add(new Fault
        {
            Operation = "decrypt",
            Action = action,
            Status = status,
            Code = code,
            RetryAfter = retryAfter,
            Times = times,
        });
        var before = s.Bed.Kms.Requests("decrypt");

        if (expected == StatusCode.OK)
        {
            Assert.Equal(s.StoredSeed, await s.Plugin.Apiserver.DecryptAsync(s.Stored));
        }
        else
        {
            var error = await Assert.ThrowsAsync<RpcException>(() => s.Plugin.Apiserver.DecryptAsync(s.Stored));
            Assert.Equal(expected, error.StatusCode);
            Assert.Contains(reasonFragment!, error.Status.Detail, StringComparison.Ordinal);
            Assert.Contains("root key 'gcpkms'", error.Status.Detail, StringComparison.Ordinal);
            Assert.DoesNotContain("ya29.", error.Status.Detail, StringComparison.Ordinal); // never a token
        }

        Assert.Equal(expectedRequests, s.Bed.Kms.Requests("decrypt") - before);
        await s.AssertCachedTrafficWorksAsync();

        if (expected != StatusCode.OK)
        {
            var healthz = await s.ProbeHealthzAsync();
            Assert.NotEqual("ok", healthz);
            Assert.Contains(reasonFragment!, healthz, StringComparison.Ordinal);
            await s.AssertCachedTrafficWorksAsync();
        }

        s.Bed.Kms.Faults.Clear();
        Assert.Equal(s.StoredSeed, await s.Plugin.Apiserver.DecryptAsync(s.Stored));
        Assert.Equal("ok", await s.ProbeHealthzAsync());
    }

    [Fact]
    public async Task A_revoked_token_is_FailedPrecondition_without_retries()
    {
        await using var s = await Scenario.StartAsync();
        s.Bed.Kms.RevokeTokens();
        var before = s.Bed.Kms.Requests("decrypt");

        var error = await Assert.ThrowsAsync<RpcException>(() => s.Plugin.Apiserver.DecryptAsync(s.Stored));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("UNAUTHENTICATED", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(1, s.Bed.Kms.Requests("decrypt") - before);
        await s.AssertCachedTrafficWorksAsync();
    }
}
