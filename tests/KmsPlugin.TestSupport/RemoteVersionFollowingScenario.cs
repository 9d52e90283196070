using System.Security.Cryptography;
using KmsPlugin.Core.Security;
using KmsPlugin.Hosting;
using Xunit;

namespace KmsPlugin.TestSupport;

/// <summary>
/// Issue 4 end to end for a provider whose backend has key versions: a plugin configured with one versionless root
/// key follows a remote rotation while apiserver clients keep encrypting and decrypting through its socket, adopts
/// the new version only after <c>rotation.stableProbes</c> observations, fails no call, changes the key_id once, and
/// never goes back when the backend's current version is rolled back. The version follower is driven explicitly
/// (<see cref="RootKeyVersionFollower.ObserveAsync"/>, what the background probe runs after each probe), so the
/// scenario does not depend on timing.
/// </summary>
public static class RemoteVersionFollowingScenario
{
    private const int StableProbes = 2;
    private const int Clients = 4;
    private const int CallsPerPhase = 100;

    /// <param name="directory">The test's directory (sockets; relative paths of the entry resolve against it).</param>
    /// <param name="rootKeyEntry">The one <c>rootKeys</c> item, without a pinned version, pointing at the provider's fake.</param>
    /// <param name="backend">How the fake rotates, rolls back and counts wraps.</param>
    /// <param name="log">Receives a one-line summary (an <c>ITestOutputHelper.WriteLine</c>).</param>
    public static async Task RunAsync(TempDirectory directory, string rootKeyEntry, RemoteKeyVersions backend, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        var configure = (int? healthPort) => PluginYaml.Parse(directory, [rootKeyEntry], healthPort, $"rotation:\n  stableProbes: {StableProbes}");
        var healthPort = FreeTcpPort.Next();
        var plugin = await PluginHost.StartAsync(configure(healthPort));
        using var clients = new ApiserverTraffic(plugin.Apiserver, Clients);
        try
        {
            var follower = plugin.App.Services.GetRequiredService<RootKeyVersionFollower>();
            Assert.Equal(StableProbes, follower.StableProbes);
            await WaitForStartupObservationAsync(follower, healthPort, backend.Provider);
            var before = (await plugin.Apiserver.StatusAsync()).KeyId;
            clients.Start();
            await clients.WaitForCallsAsync(CallsPerPhase);

            backend.Rotate();
            await follower.ObserveAsync(CancellationToken.None);
            Assert.Equal(before, (await plugin.Apiserver.StatusAsync()).KeyId); // seen on one probe of two: not adopted yet
            Assert.Equal(0, backend.WrapsWithNewVersion());
            await follower.ObserveAsync(CancellationToken.None);
            var after = (await plugin.Apiserver.StatusAsync()).KeyId;
            Assert.NotEqual(before, after);
            await clients.WaitForCallsAsync(clients.Calls + CallsPerPhase);
            var wrapsAfterAdoption = backend.WrapsWithNewVersion();

            // Another node (or this one restarted), nothing cached, opens at the new version: same key_id, and
            // everything written so far, under either version, decrypts.
            await using (var fresh = await PluginHost.StartAsync(configure(null)))
            {
                Assert.Equal(after, (await fresh.Apiserver.StatusAsync()).KeyId);
                await clients.AssertAllDecryptAsync(fresh.Apiserver);
            }

            // The rotation is rolled back remotely: seen on more consecutive probes than stableProbes, never adopted.
            backend.RollBack();
            for (var i = 0; i < StableProbes + 2; i++)
            {
                await follower.ObserveAsync(CancellationToken.None);
                Assert.Equal(after, (await plugin.Apiserver.StatusAsync()).KeyId);
            }

            await clients.WaitForCallsAsync(clients.Calls + CallsPerPhase);
            await clients.StopAsync();

            log?.Invoke($"{clients.Calls} Encrypt+Decrypt pairs by {Clients} clients, {clients.Failures.Count} failed; key_id "
                + $"{KeyIdHash.Of(before)} -> {KeyIdHash.Of(after)}; {wrapsAfterAdoption} wraps with the new version after adoption");
            clients.AssertKeyIdChangedOnce(before, after);
            Assert.True(wrapsAfterAdoption > 0, "the backend saw no wrap with the new version after it was adopted");
            Assert.Equal(after, (await plugin.Apiserver.StatusAsync()).KeyId);
            Assert.Equal(after, (await plugin.Apiserver.EncryptAsync(RandomNumberGenerator.GetBytes(32))).KeyId);
            var keyIdInfo = Assert.Single((await PrometheusScrape.GetAsync(healthPort)).All("kms_plugin_key_id_info"));
            Assert.Equal(KeyIdHash.Of(after), keyIdInfo.Labels["key_id_hash"]);
        }
        finally
        {
            await clients.StopAsync();
            await plugin.DisposeAsync();
        }

        // After the roll-back a restarted plugin opens at the old version again (a restart, or pinning the version, is
        // how an operator chooses it): everything written before, during and after the move decrypts from an empty cache.
        await using var restarted = await PluginHost.StartAsync(configure(null));
        await clients.AssertAllDecryptAsync(restarted.Apiserver);
    }

    /// <summary>
    /// Waits until the follower's round after the startup probe is over (<see cref="RootKeyVersionFollower.Rounds"/>),
    /// so that the rounds the scenario runs are the only ones that see the rotation.
    /// </summary>
    private static async Task WaitForStartupObservationAsync(RootKeyVersionFollower follower, int healthPort, string provider)
    {
        for (var i = 0; i < 600 && follower.Rounds == 0; i++)
        {
            await Task.Delay(25);
        }

        Assert.True(follower.Rounds > 0, $"the background probe never ran the version follower for the {provider} key");
        var reads = (await PrometheusScrape.GetAsync(healthPort)).Sum("kms_plugin_root_key_requests_total", ("provider", provider), ("operation", "read_version"));
        Assert.True(reads > 0, $"the follower's round did not read the {provider} key's current version");
    }
}
