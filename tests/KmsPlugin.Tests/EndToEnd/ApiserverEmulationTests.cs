using System.Security.Cryptography;
using KmsPlugin.Client;
using KmsPlugin.Core.Protocol;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.EndToEnd;

/// <summary>The apiserver's conversation with the plugin, over a real Unix socket, checked with the apiserver's rules.</summary>
public sealed class ApiserverEmulationTests
{
    internal static async Task AssertApiserverConversationAsync(ApiserverEmulator apiserver)
    {
        var status = await apiserver.StatusAsync();
        Assert.Null(ApiserverEmulator.CheckStatus(status));
        Assert.Equal("ok", status.Healthz);
        Assert.Equal("v2", status.Version);

        var seed = RandomNumberGenerator.GetBytes(ApiserverLimits.ApiserverSeedBytes);
        var encrypted = await apiserver.EncryptAsync(seed);
        Assert.Null(ApiserverEmulator.CheckEncrypt(encrypted, status.KeyId));
        Assert.Equal(status.KeyId, encrypted.KeyId);
        Assert.All(encrypted.Annotations.Keys, key => Assert.Null(ApiserverRules.CheckFullyQualifiedDomainName(key)));

        Assert.Equal(seed, await apiserver.DecryptAsync(encrypted));
        var report = await apiserver.ProbeAsync();
        Assert.True(report.Ok, string.Join('\n', report.Lines));
    }

    [Fact]
    public async Task Status_encrypt_decrypt_with_a_local_root_key_passes_the_apiservers_checks()
    {
        await using var plugin = await PluginHost.StartLocalAsync();
        await plugin.WaitForProbeAsync();
        await AssertApiserverConversationAsync(plugin.Apiserver);
    }

    [Fact]
    public async Task Status_reports_v2beta1_when_configured_for_old_apiservers_and_never_changes()
    {
        await using var plugin = await PluginHost.StartLocalAsync(adjust: c => c with { StatusVersion = "v2beta1" });
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal("v2beta1", (await plugin.Apiserver.StatusAsync()).Version);
            await plugin.Apiserver.EncryptAsync(RandomNumberGenerator.GetBytes(32));
        }
    }

    [Fact]
    public async Task Status_makes_no_root_key_call()
    {
        var counting = new TestSupport.FakeRootKey("counted");
        await using var plugin = await PluginHost.StartLocalAsync(dependencies: new Hosting.ServerDependencies { DecorateRootKey = _ => counting });
        await plugin.WaitForProbeAsync();
        var (wraps, unwraps) = (counting.Wraps, counting.Unwraps);
        for (var i = 0; i < 1000; i++)
        {
            await plugin.Apiserver.StatusAsync();
        }

        Assert.Equal((wraps, unwraps), (counting.Wraps, counting.Unwraps));
    }

    [Fact]
    public async Task Status_reports_an_unreachable_root_key_with_a_reason_and_recovers()
    {
        var flaky = new TestSupport.FakeRootKey("flaky") { Failure = new Core.Errors.KmsPluginException(Core.Errors.KmsErrorKind.RootKeyUnavailable, "HSM unplugged") };
        await using var plugin = await PluginHost.StartLocalAsync(dependencies: new Hosting.ServerDependencies { DecorateRootKey = _ => flaky },
            adjust: c => c with { Health = c.Health with { ProbeInterval = TimeSpan.FromSeconds(5) } });
        await plugin.WaitForProbeAsync();
        var status = await plugin.Apiserver.StatusAsync();
        Assert.NotEqual("ok", status.Healthz);
        Assert.Contains("HSM unplugged", status.Healthz, StringComparison.Ordinal);
        Assert.Contains("flaky", status.Healthz, StringComparison.Ordinal);
        Assert.False((await plugin.Apiserver.ProbeAsync()).Ok);

        flaky.Failure = null;
        await plugin.App.Services.GetRequiredService<Core.Envelope.RootKeyHealthMonitor>().ProbeOnceAsync(CancellationToken.None);
        Assert.Equal("ok", (await plugin.Apiserver.StatusAsync()).Healthz);
    }

    [Fact]
    public async Task A_hundred_concurrent_decrypts_over_the_socket_under_one_cold_KEK_cause_one_unwrap()
    {
        var root = new TestSupport.FakeRootKey("counted");
        using var dir = new TestSupport.TempDirectory();
        var stored = new List<(byte[] Seed, Protocol.V2.EncryptResponse Response)>();
        await using (var writer = await PluginHost.StartLocalAsync(dir, new Hosting.ServerDependencies { DecorateRootKey = _ => root }))
        {
            for (var i = 0; i < 100; i++)
            {
                var seed = RandomNumberGenerator.GetBytes(32);
                stored.Add((seed, await writer.Apiserver.EncryptAsync(seed)));
            }
        }

        root.Latency = TimeSpan.FromMilliseconds(300); // a remote KMS round trip
        await using var restarted = await PluginHost.StartLocalAsync(dir, new Hosting.ServerDependencies { DecorateRootKey = _ => root });
        await restarted.WaitForProbeAsync();
        var unwrapsBefore = root.Unwraps; // the health probe's canary
        var results = await Task.WhenAll(stored.Select(s => restarted.Apiserver.DecryptAsync(s.Response)));
        Assert.Equal(stored.Select(s => s.Seed), results);
        Assert.Equal(1, root.Unwraps - unwrapsBefore);
    }
}
