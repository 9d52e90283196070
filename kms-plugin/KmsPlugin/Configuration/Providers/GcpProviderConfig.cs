using KmsPlugin.Gcp;

namespace KmsPlugin.Configuration.Providers;

/// <summary>
/// <c>provider: gcp</c> — a symmetric key in GCP Cloud KMS (docs/providers/gcp.md). The parsed settings are the
/// provider's own <see cref="GcpKmsRootKeyOptions"/>, named when the key is opened.
/// </summary>
public static class GcpProviderConfig
{
    public static RootKeyProvider Provider { get; } = new(GcpKmsRootKey.ProviderName, Parse,
        (config, _) =>
        {
            var options = config.SettingsAs<GcpKmsRootKeyOptions>() with { Name = config.Name };
            using var timeout = new CancellationTokenSource(RemoteProviderSettings.OpenBudget(options.NetworkTimeout, options.Retry));
            return GcpKmsRootKey.OpenAsync(options, timeout.Token).GetAwaiter().GetResult();
        });

    private static readonly string[] Fields = ["cryptoKey", "cryptoKeyVersion", "endpoint", "credentialsFile", .. RemoteProviderSettings.Fields];

    private static GcpKmsRootKeyOptions Parse(ConfigNode gcp, string baseDirectory)
    {
        gcp.AllowOnly(Fields);
        var cryptoKey = gcp.Text("cryptoKey")
            ?? throw new ConfigException(gcp.Field("cryptoKey"), "is required (projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY)");
        var segments = cryptoKey.Split('/');
        if (segments.Length != 8 || segments[0] != "projects" || segments[2] != "locations" || segments[4] != "keyRings" || segments[6] != "cryptoKeys"
            || segments.Any(s => s.Length == 0))
        {
            throw new ConfigException(gcp.Field("cryptoKey"), $"must be projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY, got \"{cryptoKey}\"");
        }

        var version = gcp.Text("cryptoKeyVersion");
        if (version is not null && !version.All(char.IsAsciiDigit))
        {
            throw new ConfigException(gcp.Field("cryptoKeyVersion"), $"must be a version number such as 3, got \"{version}\"");
        }

        var endpoint = RemoteProviderSettings.HttpsUrl(gcp, "endpoint") ?? GcpKmsRootKeyOptions.DefaultEndpoint;
        if (endpoint.AbsolutePath != "/" || endpoint.Query.Length > 0)
        {
            throw new ConfigException(gcp.Field("endpoint"), "must be a base URL without a path (e.g. https://cloudkms.googleapis.com)");
        }

        return new GcpKmsRootKeyOptions
        {
            Name = "",
            CryptoKey = cryptoKey,
            CryptoKeyVersion = version,
            Endpoint = endpoint,
            CredentialsFile = RemoteProviderSettings.FilePath(gcp, "credentialsFile", baseDirectory),
            CaFile = RemoteProviderSettings.FilePath(gcp, "caFile", baseDirectory),
            NetworkTimeout = RemoteProviderSettings.NetworkTimeout(gcp),
            Retry = RemoteProviderSettings.Retry(gcp),
        };
    }
}
