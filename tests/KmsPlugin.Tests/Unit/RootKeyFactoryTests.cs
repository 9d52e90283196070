using System.Diagnostics.Metrics;
using KmsPlugin.Configuration;
using KmsPlugin.Configuration.Providers;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.Hosting;
using KmsPlugin.Observability;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.Unit;

/// <summary>How the server decorates each root key it opens: breaker outermost, then metering, then the remote (or the test's stand-in for it).</summary>
public sealed class RootKeyFactoryTests
{
    [Fact]
    public void A_versioned_remote_key_is_behind_the_breaker_then_the_metering_and_keeps_that_order_on_every_version()
    {
        using var dir = new TempDirectory();
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var metrics = new PluginMetrics(services.GetRequiredService<IMeterFactory>());
        var remote = new FakeVersionedRootKey(new FakeVersionedBackend(), "dev", "1");
        var guard = new RemoteRootKeyGuard(CircuitBreakerOptions.Default, TimeProvider.System) { DecorateRemote = _ => remote };
        var config = new RootKeyConfig { Name = "dev", Provider = "local", Settings = new LocalRootKeyConfig(dir.FilePath("root.key"), true) };

        using var key = RootKeyFactory.Create(config, CsprngRandomSource.Instance, metrics, guard);
        var (breaker, _) = AssertLayers(key, remote);

        using var next = ((IVersionedRootKey)key).WithVersion("2");
        var (nextBreaker, nextInner) = AssertLayers(next, null);
        Assert.Same(breaker, nextBreaker);
        Assert.Equal("2", Assert.IsType<FakeVersionedRootKey>(nextInner).CurrentVersion);
    }

    /// <summary>Asserts breaker → metering → remote (<paramref name="remote"/> when given) and returns the breaker and the remote.</summary>
    private static (CircuitBreaker Breaker, IVersionedRootKey Remote) AssertLayers(IRootKey key, IVersionedRootKey? remote)
    {
        var outer = Assert.IsType<PolicyVersionedRootKey>(key);
        var breaker = Assert.IsType<CircuitBreakerPolicy>(outer.Policy).Breaker;
        var metered = Assert.IsType<PolicyVersionedRootKey>(outer.Inner);
        Assert.IsType<MeteringPolicy>(metered.Policy);
        var inner = Assert.IsAssignableFrom<IVersionedRootKey>(metered.Inner);
        if (remote is not null)
        {
            Assert.Same(remote, inner);
        }

        return (breaker, inner);
    }
}
