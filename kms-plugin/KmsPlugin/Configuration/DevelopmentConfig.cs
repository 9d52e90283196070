using KmsPlugin.Configuration.Providers;

namespace KmsPlugin.Configuration;

/// <summary>
/// The embedded default behind <c>serve --dev</c>: a local root key created as a 0600 file and a socket, both in the
/// working directory. Good for trying the plugin and for CI; never for a real cluster (the root key sits on disk).
/// </summary>
public static class DevelopmentConfig
{
    public const string SocketFileName = "kms-plugin.sock";
    public const string KeyFileName = "kms-plugin-dev-root.key";

    public static PluginConfig For(string workingDirectory, string? listenOverride) => new()
    {
        SocketPath = listenOverride is null
            ? ConfigLoader.ParseListen("working directory", ConfigLoader.ListenScheme + Path.Combine(workingDirectory, SocketFileName))
            : ConfigLoader.ParseListen("--listen", listenOverride),
        Kek = new KekConfig(),
        RootKeys =
        [
            new RootKeyConfig
            {
                Name = "dev",
                Provider = "local",
                Role = Core.RootKeys.RootKeyRole.Primary,
                Settings = new LocalRootKeyConfig(Path.Combine(workingDirectory, KeyFileName), Create: true),
            },
        ],
        Health = new HealthConfig(),
        Logging = new LoggingConfig(),
        Development = true,
    };
}
