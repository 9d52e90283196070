using KmsPlugin.Core.Errors;
using KmsPlugin.Vault;

namespace KmsPlugin.Configuration.Providers;

/// <summary>
/// <c>provider: vault</c> — a HashiCorp Vault / OpenBao Transit key (docs/providers/vault.md). The settings are the
/// provider's own options, validated here so a bad value fails at load with its field name; the entry's name is
/// filled in at open. Credentials are files (token, JWT, AppRole secret id), never values in this file.
/// </summary>
public static class VaultProviderConfig
{
    public static RootKeyProvider Provider { get; } = new("vault", Parse,
        (config, _) => VaultTransitRootKey.Open(config.SettingsAs<VaultTransitRootKeyOptions>() with { Name = config.Name }));

    private static readonly string[] Fields = ["address", "namespace", "mount", "key", "keyVersion", "auth", .. RemoteProviderSettings.Fields];

    private static VaultTransitRootKeyOptions Parse(ConfigNode vault, string baseDirectory)
    {
        vault.AllowOnly(Fields);
        var address = vault.Text("address") ?? throw new ConfigException(vault.Field("address"), "is required, e.g. https://vault.example.com:8200");
        if (!Uri.TryCreate(address, UriKind.Absolute, out var addressUri))
        {
            throw new ConfigException(vault.Field("address"), $"must be an absolute https:// URL, got \"{address}\"");
        }

        var networkTimeout = RemoteProviderSettings.NetworkTimeout(vault);
        var retry = RemoteProviderSettings.Retry(vault);
        var options = new VaultTransitRootKeyOptions
        {
            Name = "(config)",
            Address = addressUri,
            Namespace = vault.Text("namespace"),
            Mount = vault.Text("mount") ?? "transit",
            KeyName = vault.Text("key") ?? throw new ConfigException(vault.Field("key"), "is required: the Transit key's name"),
            KeyVersion = vault.Text("keyVersion") is null ? null : (int)vault.WholeNumber("keyVersion", 0, 1, int.MaxValue),
            Auth = ParseAuth(vault.Mapping("auth") ?? throw new ConfigException(vault.Field("auth"), "is required (method: kubernetes, jwt, approle or token)"),
                baseDirectory),
            CaFile = RemoteProviderSettings.FilePath(vault, "caFile", baseDirectory),
            RequestTimeout = networkTimeout,
            OpenTimeout = RemoteProviderSettings.OpenBudget(networkTimeout, retry),
            Retry = retry,
        };
        try
        {
            options.Validate();
        }
        catch (KmsPluginException e) when (e.Data[VaultTransitRootKeyOptions.OptionDataKey] is string option)
        {
            throw new ConfigException(vault.Field(option), e.Data[VaultTransitRootKeyOptions.ProblemDataKey] as string ?? e.Message);
        }

        return options;
    }

    private static VaultAuthOptions ParseAuth(ConfigNode auth, string baseDirectory)
    {
        auth.AllowOnly("method", "mount", "role", "tokenFile", "roleId", "roleIdFile", "secretIdFile");
        var method = auth.Text("method") ?? throw new ConfigException(auth.Field("method"), "is required: kubernetes, jwt, approle or token");
        return new VaultAuthOptions
        {
            Method = ConfigLoader.OneOf(auth.Field("method"), method, "kubernetes", "jwt", "approle", "token") switch
            {
                "kubernetes" => VaultAuthMethod.Kubernetes,
                "jwt" => VaultAuthMethod.Jwt,
                "approle" => VaultAuthMethod.AppRole,
                _ => VaultAuthMethod.Token,
            },
            Mount = auth.Text("mount"),
            Role = auth.Text("role"),
            TokenFile = RemoteProviderSettings.FilePath(auth, "tokenFile", baseDirectory),
            RoleId = auth.Text("roleId"),
            RoleIdFile = RemoteProviderSettings.FilePath(auth, "roleIdFile", baseDirectory),
            SecretIdFile = RemoteProviderSettings.FilePath(auth, "secretIdFile", baseDirectory),
        };
    }
}
