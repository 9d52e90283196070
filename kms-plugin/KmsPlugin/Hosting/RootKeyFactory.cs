using KmsPlugin.Configuration;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.Observability;

namespace KmsPlugin.Hosting;

/// <summary>Opens the configured root keys through their explicitly registered providers (<see cref="RootKeyProviders"/>).</summary>
public static class RootKeyFactory
{
    public static RootKeyRing CreateRing(IReadOnlyList<RootKeyConfig> configs, IRandomSource random)
    {
        ArgumentNullException.ThrowIfNull(configs);
        var keys = new List<IRootKey>();
        try
        {
            foreach (var config in configs)
            {
                keys.Add(Create(config, random));
            }

            return new RootKeyRing(keys);
        }
        catch
        {
            foreach (var key in keys)
            {
                key.Dispose();
            }

            throw;
        }
    }

    /// <summary>Opens one root key; with <paramref name="metrics"/>, its remote calls are metered (<see cref="MeteringPolicy"/> directly around the provider's key);
    /// with <paramref name="guard"/>, a remote key is behind a circuit breaker (outside the metering, see <see cref="RemoteRootKeyGuard"/>).</summary>
    public static IRootKey Create(RootKeyConfig config, IRandomSource random, PluginMetrics? metrics = null, RemoteRootKeyGuard? guard = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var provider = RootKeyProviders.Find(config.Provider) ?? throw new ConfigException("provider", $"unsupported provider {config.Provider}");
        var opened = provider.Open(config, random);
        return guard is null ? MeteringPolicy.Decorate(opened, metrics) : guard.Protect(MeteringPolicy.Decorate(guard.Remote(opened), metrics));
    }
}
