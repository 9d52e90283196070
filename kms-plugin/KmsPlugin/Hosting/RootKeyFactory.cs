using KmsPlugin.Configuration;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

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

    public static IRootKey Create(RootKeyConfig config, IRandomSource random)
    {
        ArgumentNullException.ThrowIfNull(config);
        var provider = RootKeyProviders.Find(config.Provider) ?? throw new ConfigException("provider", $"unsupported provider {config.Provider}");
        return provider.Open(config, random);
    }
}
