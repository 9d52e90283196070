using Grpc.Core;
using KmsPlugin.Configuration;
using Xunit;

namespace KmsPlugin.TestSupport;

/// <summary>How a provider's wire fake fails unwraps, for <see cref="RemoteFaultScenario"/>.</summary>
public sealed record RemoteUnwrapFault
{
    /// <summary>The root key entry's <c>name</c>: errors and Status's healthz name it.</summary>
    public required string RootKeyName { get; init; }

    /// <summary>From now on the backend answers unwrap (decrypt) requests with the fault.</summary>
    public required Action Inject { get; init; }

    /// <summary>The backend answers normally again.</summary>
    public required Action Clear { get; init; }

    /// <summary>Unwrap (decrypt) requests the backend has received, failed or not.</summary>
    public required Func<int> UnwrapRequests { get; init; }

    /// <summary>What the backend's access tokens start with (never in an error the apiserver sees); null when none is checked.</summary>
    public string? TokenPrefix { get; init; }

    /// <summary>A fake that applies a <see cref="FaultPlan"/>: <paramref name="fault"/> is added to it, and cleared.</summary>
    public static RemoteUnwrapFault Planned(string rootKeyName, FaultPlan plan, Fault fault, Func<int> unwrapRequests, string? tokenPrefix = null)
    {
        ArgumentNullException.ThrowIfNull(plan);
        return new RemoteUnwrapFault
        {
            RootKeyName = rootKeyName,
            Inject = () => plan.Add(fault),
            Clear = plan.Clear,
            UnwrapRequests = unwrapRequests,
            TokenPrefix = tokenPrefix,
        };
    }
}

/// <summary>
/// A backend fault seen through the plugin's socket, by a plugin restarted against it
/// (<see cref="StoredCiphertextScenario"/>): a Decrypt that needs a remote unwrap gets the gRPC code the fault maps to
/// (or succeeds, when the fault passes within the retries), the backend sees exactly the attempts the retry policy
/// makes, the error and Status's healthz carry the reason and the root key's name, cached-KEK traffic keeps working
/// throughout, and everything recovers once the fault clears.
/// </summary>
public static class RemoteFaultScenario
{
    /// <param name="configure">A plugin configuration with the provider's root key (a fresh socket per call).</param>
    /// <param name="fault">How the fake fails and counts unwraps.</param>
    /// <param name="expected">The Decrypt's gRPC code; <see cref="StatusCode.OK"/> when the retries get through.</param>
    /// <param name="expectedRequests">Unwrap requests the backend sees for that Decrypt.</param>
    /// <param name="reason">A fragment of the error and of healthz (the backend's error code or the provider's cause); null with OK.</param>
    public static async Task RunAsync(Func<PluginConfig> configure, RemoteUnwrapFault fault, StatusCode expected, int expectedRequests, string? reason)
    {
        ArgumentNullException.ThrowIfNull(configure);
        ArgumentNullException.ThrowIfNull(fault);
        await using var s = await StoredCiphertextScenario.StartAsync(configure);
        var before = fault.UnwrapRequests();
        fault.Inject();

        if (expected == StatusCode.OK)
        {
            Assert.Equal(s.StoredSeed, await s.Plugin.Apiserver.DecryptAsync(s.Stored));
        }
        else
        {
            ArgumentNullException.ThrowIfNull(reason);
            var error = await Assert.ThrowsAsync<RpcException>(() => s.Plugin.Apiserver.DecryptAsync(s.Stored));
            Assert.Equal(expected, error.StatusCode);
            Assert.Contains(reason, error.Status.Detail, StringComparison.Ordinal);
            Assert.Contains($"'{fault.RootKeyName}'", error.Status.Detail, StringComparison.Ordinal);
            if (fault.TokenPrefix is { } token)
            {
                Assert.DoesNotContain(token, error.Status.Detail, StringComparison.Ordinal);
            }
        }

        Assert.Equal(expectedRequests, fault.UnwrapRequests() - before);
        await s.AssertCachedTrafficWorksAsync();

        if (expected != StatusCode.OK)
        {
            // The probe (a wrap and unwrap of a canary) meets the fault too and Status reports it; cached KEKs still serve.
            var healthz = await s.ProbeHealthzAsync();
            Assert.NotEqual("ok", healthz);
            Assert.Contains(reason!, healthz, StringComparison.Ordinal);
            Assert.Contains(fault.RootKeyName, healthz, StringComparison.Ordinal);
            await s.AssertCachedTrafficWorksAsync();
        }

        fault.Clear();
        Assert.Equal(s.StoredSeed, await s.Plugin.Apiserver.DecryptAsync(s.Stored));
        Assert.Equal("ok", await s.ProbeHealthzAsync());
    }
}
