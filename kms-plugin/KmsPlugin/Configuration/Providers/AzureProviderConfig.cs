using KmsPlugin.Azure;

namespace KmsPlugin.Configuration.Providers;

/// <summary>
/// <c>provider: azure</c> — a key in Azure Key Vault or Managed HSM (docs/providers/azure.md). The parsed settings
/// are the provider's own <see cref="AzureKeyVaultRootKeyOptions"/>, named when the key is opened.
/// </summary>
public static class AzureProviderConfig
{
    public static RootKeyProvider Provider { get; } = new(AzureKeyVaultRootKey.ProviderName, Parse,
        (config, _) =>
        {
            var options = config.SettingsAs<AzureKeyVaultRootKeyOptions>() with { Name = config.Name };
            using var timeout = new CancellationTokenSource(RemoteProviderSettings.OpenBudget(options.NetworkTimeout, options.Retry));
            return AzureKeyVaultRootKey.OpenAsync(options, timeout.Token).GetAwaiter().GetResult();
        });

    private static readonly string[] Fields =
        ["vaultUrl", "keyName", "keyVersion", "algorithm", "apiVersion", "scope", "credential", .. RemoteProviderSettings.Fields];

    private static readonly string[] CredentialTypes = ["workloadIdentity", "managedIdentity", "clientSecret", "clientCertificate"];

    private static AzureKeyVaultRootKeyOptions Parse(ConfigNode azure, string baseDirectory)
    {
        azure.AllowOnly(Fields);
        var vault = RemoteProviderSettings.HttpsUrl(azure, "vaultUrl")
            ?? throw new ConfigException(azure.Field("vaultUrl"), "is required (e.g. https://myvault.vault.azure.net or https://myhsm.managedhsm.azure.net)");
        if (vault.AbsolutePath != "/" || vault.Query.Length > 0)
        {
            throw new ConfigException(azure.Field("vaultUrl"), "must be the vault's base URL without a path (https://myvault.vault.azure.net)");
        }

        var keyName = azure.Text("keyName") ?? throw new ConfigException(azure.Field("keyName"), "is required");
        var algorithm = azure.Text("algorithm") ?? "RSA-OAEP-256";
        if (algorithm is not ("RSA-OAEP-256" or "A256KW"))
        {
            throw new ConfigException(azure.Field("algorithm"), $"must be RSA-OAEP-256 (Key Vault RSA keys) or A256KW (Managed HSM AES keys), got \"{algorithm}\"");
        }

        var scope = RemoteProviderSettings.HttpsUrl(azure, "scope");
        return new AzureKeyVaultRootKeyOptions
        {
            Name = "",
            VaultUri = vault,
            KeyName = keyName,
            KeyVersion = azure.Text("keyVersion"),
            Algorithm = algorithm,
            ApiVersion = azure.Text("apiVersion") ?? AzureKeyVaultRootKeyOptions.DefaultApiVersion,
            Scope = scope?.OriginalString,
            Credential = ParseCredential(azure.Mapping("credential"), azure.Field("credential"), baseDirectory),
            CaFile = RemoteProviderSettings.FilePath(azure, "caFile", baseDirectory),
            NetworkTimeout = RemoteProviderSettings.NetworkTimeout(azure),
            Retry = RemoteProviderSettings.Retry(azure),
        };
    }

    private static AzureCredentialOptions ParseCredential(ConfigNode? credential, string field, string baseDirectory)
    {
        if (credential is null)
        {
            throw new ConfigException(field, $"is required: type is one of {string.Join(", ", CredentialTypes)}");
        }

        credential.AllowOnly("type", "tenantId", "clientId", "tokenFile", "secretFile", "certificateFile", "resourceId", "authorityHost");
        var type = ConfigLoader.OneOf(credential.Field("type"),
            credential.Text("type") ?? throw new ConfigException(credential.Field("type"), $"is required: one of {string.Join(", ", CredentialTypes)}"),
            CredentialTypes);
        var options = new AzureCredentialOptions
        {
            Kind = type switch
            {
                "managedIdentity" => AzureCredentialKind.ManagedIdentity,
                "clientSecret" => AzureCredentialKind.ClientSecret,
                "clientCertificate" => AzureCredentialKind.ClientCertificate,
                _ => AzureCredentialKind.WorkloadIdentity,
            },
            TenantId = credential.Text("tenantId"),
            ClientId = credential.Text("clientId"),
            TokenFile = RemoteProviderSettings.FilePath(credential, "tokenFile", baseDirectory),
            SecretFile = RemoteProviderSettings.FilePath(credential, "secretFile", baseDirectory),
            CertificateFile = RemoteProviderSettings.FilePath(credential, "certificateFile", baseDirectory),
            ManagedIdentityResourceId = credential.Text("resourceId"),
            AuthorityHost = RemoteProviderSettings.HttpsUrl(credential, "authorityHost"),
        };

        // Which fields each kind needs, named the way the file names them.
        var needs = options.Kind switch
        {
            AzureCredentialKind.ClientSecret => new[] { "tenantId", "clientId", "secretFile" },
            AzureCredentialKind.ClientCertificate => ["tenantId", "clientId", "certificateFile"],
            _ => [],
        };
        foreach (var key in needs)
        {
            if (credential.Text(key) is null)
            {
                throw new ConfigException(credential.Field(key), $"is required for type {type} (secrets are read from files, never from this file)");
            }
        }

        var notFor = options.Kind switch
        {
            AzureCredentialKind.WorkloadIdentity => new[] { "secretFile", "certificateFile", "resourceId" },
            AzureCredentialKind.ManagedIdentity => ["tenantId", "tokenFile", "secretFile", "certificateFile"],
            AzureCredentialKind.ClientSecret => ["tokenFile", "certificateFile", "resourceId"],
            _ => ["tokenFile", "secretFile", "resourceId"],
        };
        foreach (var key in notFor)
        {
            if (credential.Text(key) is not null)
            {
                throw new ConfigException(credential.Field(key), $"does not apply to type {type}");
            }
        }

        return options;
    }
}
