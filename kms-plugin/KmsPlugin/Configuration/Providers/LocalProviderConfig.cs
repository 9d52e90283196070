using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Configuration.Providers;

/// <summary><c>provider: local</c> — a root key in a 0600 file. Development only.</summary>
public sealed record LocalRootKeyConfig(string KeyFile, bool Create);

public static class LocalProviderConfig
{
    public static RootKeyProvider Provider { get; } = new("local", Parse,
        (config, random) =>
        {
            var settings = config.SettingsAs<LocalRootKeyConfig>();
            return LocalRootKey.Open(config.Name, settings.KeyFile, settings.Create, random);
        });

    private static LocalRootKeyConfig Parse(ConfigNode local, string baseDirectory)
    {
        local.AllowOnly("keyFile", "create");
        var file = local.Text("keyFile") ?? throw new ConfigException(local.Field("keyFile"), "is required");
        return new LocalRootKeyConfig(Path.GetFullPath(file, baseDirectory), local.Bool("create", false));
    }
}
