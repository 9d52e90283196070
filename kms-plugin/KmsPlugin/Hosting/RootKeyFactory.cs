using KmsPlugin.Configuration;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.Pkcs11;

namespace KmsPlugin.Hosting;

/// <summary>
/// Builds root keys from configuration by an explicit switch on the provider name — never by scanning assemblies
/// (Tink deprecated KMS-client discovery because a planted class could supply a fake key).
/// </summary>
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
        return config.Provider switch
        {
            "local" => LocalRootKey.Open(config.Name, config.Local!.KeyFile, config.Local.Create, random),
            "pkcs11" => Pkcs11RootKey.Open(new Pkcs11RootKeyOptions
            {
                Name = config.Name,
                Library = config.Pkcs11!.Library,
                TokenLabel = config.Pkcs11.TokenLabel,
                KeyLabel = config.Pkcs11.KeyLabel,
                KeyId = config.Pkcs11.KeyId,
                PinFile = config.Pkcs11.PinFile,
                SessionPoolSize = config.Pkcs11.SessionPoolSize,
            }, random),
            _ => throw new ConfigException("provider", $"unsupported provider {config.Provider}"),
        };
    }
}
