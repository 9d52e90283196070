using System.Net;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Azure;

/// <summary>Settings of one <c>provider: azure</c> root key (docs/providers/azure.md documents each one).</summary>
public sealed record AzureKeyVaultRootKeyOptions
{
    /// <summary>The Key Vault REST API version used when none is configured (Key Vault REST 7.4, GA 2023).</summary>
    public const string DefaultApiVersion = "7.4";

    /// <summary>The operator's name of the root key (for messages).</summary>
    public required string Name { get; init; }

    /// <summary>The vault (<c>https://NAME.vault.azure.net</c>) or Managed HSM (<c>https://NAME.managedhsm.azure.net</c>) URL (<c>vaultUrl</c>).</summary>
    public required Uri VaultUri { get; init; }

    /// <summary>The key's name in the vault (<c>keyName</c>).</summary>
    public required string KeyName { get; init; }

    /// <summary>A pinned key version (<c>keyVersion</c>); null uses the newest version, resolved at open and then followed.</summary>
    public string? KeyVersion { get; init; }

    /// <summary><c>RSA-OAEP-256</c> (Key Vault RSA keys) or <c>A256KW</c> (Managed HSM AES keys) (<c>algorithm</c>).</summary>
    public string Algorithm { get; init; } = KeyVaultAlgorithms.RsaOaep256;

    /// <summary>The <c>api-version</c> query parameter of every call (<c>apiVersion</c>).</summary>
    public string ApiVersion { get; init; } = DefaultApiVersion;

    /// <summary>The Entra ID token scope (<c>scope</c>); null derives it from the vault host (see <see cref="EffectiveScope"/>).</summary>
    public string? Scope { get; init; }

    /// <summary>How the plugin authenticates to Entra ID (<c>credential</c>).</summary>
    public required AzureCredentialOptions Credential { get; init; }

    /// <summary>PEM bundle of extra CAs trusted for TLS, for private endpoints and proxies (<c>caFile</c>).</summary>
    public string? CaFile { get; init; }

    /// <summary>Upper bound on one HTTP attempt (Azure.Core <c>NetworkTimeout</c>) (<c>networkTimeout</c>).</summary>
    public TimeSpan NetworkTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Retries of throttled and transient failures; Azure.Core's own retries are off so this is the only policy.</summary>
    public RetryPolicy Retry { get; init; } = RetryPolicy.Default;

    /// <summary>
    /// The scope to request: the configured one, else <c>https://&lt;vault host without its first label&gt;/.default</c> —
    /// <c>vault.azure.net</c>, <c>managedhsm.azure.net</c>, and the sovereign clouds' <c>vault.azure.cn</c>,
    /// <c>vault.usgovcloudapi.net</c> all follow that rule (Key Vault authentication docs, "resource" per cloud).
    /// </summary>
    public string EffectiveScope
    {
        get
        {
            if (Scope is not null)
            {
                return Scope;
            }

            var host = VaultUri.Host;
            var dot = host.IndexOf('.', StringComparison.Ordinal);
            if (IPAddress.TryParse(host, out _) || dot < 0 || host.AsSpan(dot + 1).IndexOf('.') < 0)
            {
                throw Invalid("scope", $"cannot be derived from the vault host {host}; set it (e.g. https://vault.azure.net/.default)");
            }

            return $"https://{host[(dot + 1)..]}/.default";
        }
    }

    /// <summary>The vault URL reduced to scheme, lowercase host and port: the form used in key identifiers.</summary>
    public string NormalizedVault => VaultUri.GetComponents(UriComponents.SchemeAndServer, UriFormat.UriEscaped).ToLowerInvariant();

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Name))
        {
            throw Invalid("name", "must not be empty");
        }

        // Azure.Core refuses bearer tokens over plain http, and so do we: the token is a credential for the vault.
        if (!VaultUri.IsAbsoluteUri || VaultUri.Scheme != Uri.UriSchemeHttps)
        {
            throw Invalid("vaultUrl", $"must be an https:// URL such as https://myvault.vault.azure.net, got {VaultUri}");
        }

        if (VaultUri.AbsolutePath != "/" || VaultUri.Query.Length > 0)
        {
            throw Invalid("vaultUrl", "must be the vault's base URL without a path or query (https://myvault.vault.azure.net)");
        }

        // Key Vault object names: 1-127 characters, letters, digits and dashes.
        if (string.IsNullOrEmpty(KeyName) || KeyName.Length > 127 || !KeyName.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
        {
            throw Invalid("keyName", $"must be 1-127 letters, digits or dashes, got '{KeyName}'");
        }

        if (KeyVersion is not null && !KeyVaultKeyIdentifier.IsValidVersion(KeyVersion))
        {
            throw Invalid("keyVersion", $"must be a key version (letters and digits, e.g. 32 hex digits), got '{KeyVersion}'");
        }

        if (!KeyVaultAlgorithms.IsSupported(Algorithm))
        {
            throw Invalid("algorithm", $"must be {KeyVaultAlgorithms.RsaOaep256} (Key Vault RSA keys) or {KeyVaultAlgorithms.A256Kw} (Managed HSM AES keys), got '{Algorithm}'");
        }

        if (string.IsNullOrWhiteSpace(ApiVersion) || !ApiVersion.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-'))
        {
            throw Invalid("apiVersion", $"must be a Key Vault REST api-version such as {DefaultApiVersion}, got '{ApiVersion}'");
        }

        if (Scope is not null && (!Uri.TryCreate(Scope, UriKind.Absolute, out var scope) || scope.Scheme != Uri.UriSchemeHttps))
        {
            throw Invalid("scope", $"must be an https:// resource scope such as https://vault.azure.net/.default, got '{Scope}'");
        }

        _ = EffectiveScope;
        if (NetworkTimeout <= TimeSpan.Zero)
        {
            throw Invalid("networkTimeout", "must be positive");
        }

        if (Retry.MaxAttempts < 1)
        {
            throw Invalid("maxAttempts", "must be at least 1");
        }

        Credential.Validate(this);
    }

    internal KmsPluginException Invalid(string option, string problem) =>
        new(KmsErrorKind.RootKeyDenied, $"azure root key '{Name}': option {option} {problem}");
}
