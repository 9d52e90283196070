using KmsPlugin.Configuration.Providers;

namespace KmsPlugin.Configuration;

/// <summary>
/// Every provider the plugin can use, by explicit registration (Tink deprecated KMS-client discovery because a
/// planted class could supply a fake key). Add a provider here with one line.
/// </summary>
public static class RootKeyProviders
{
    public static IReadOnlyList<RootKeyProvider> All { get; } =
    [
        LocalProviderConfig.Provider,
        Pkcs11ProviderConfig.Provider,
        AwsProviderConfig.Provider,
        VaultProviderConfig.Provider,
        AzureProviderConfig.Provider,
        GcpProviderConfig.Provider,
    ];

    public static IEnumerable<string> Names => All.Select(p => p.Name);

    public static RootKeyProvider? Find(string name) => All.FirstOrDefault(p => p.Name == name);
}
