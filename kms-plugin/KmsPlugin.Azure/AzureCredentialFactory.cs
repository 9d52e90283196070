using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Identity;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Azure;

/// <summary>
/// Builds the Azure.Identity credential for an <c>azure</c> root key. Every credential gets the same transport as the
/// vault calls (system roots plus <c>caFile</c>), Azure.Identity's own retries off (the root key's shared
/// <see cref="KmsPlugin.Core.RootKeys.RetryPolicy"/> retries the whole call), and the configured network timeout.
/// </summary>
internal static class AzureCredentialFactory
{
    /// <summary>Entra ID hosts of the Azure clouds; any other authority (Azure Stack, a test's fake) gets instance discovery off.</summary>
    private static readonly string[] KnownAuthorityHosts =
    [
        AzureAuthorityHosts.AzurePublicCloud.Host,
        AzureAuthorityHosts.AzureChina.Host,
        AzureAuthorityHosts.AzureGovernment.Host,
    ];

    public static TokenCredential Create(AzureKeyVaultRootKeyOptions options, CaBundle? caBundle)
    {
        var credential = options.Credential;
        var owner = $"azure root key '{options.Name}'";
        switch (credential.Kind)
        {
            case AzureCredentialKind.WorkloadIdentity:
            {
                // Null fields fall back to AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_FEDERATED_TOKEN_FILE, which the
                // AKS workload identity webhook injects. Not WorkloadIdentityCredential: it caches the file's content
                // for minutes, while this reads it on every token request (about once an hour), so a projected token
                // that kubelet rotated is used from the next request on.
                var tenantId = credential.TenantId ?? FromEnvironment("AZURE_TENANT_ID", options, "credential.tenantId");
                var clientId = credential.ClientId ?? FromEnvironment("AZURE_CLIENT_ID", options, "credential.clientId");
                var tokenFile = credential.TokenFile ?? FromEnvironment("AZURE_FEDERATED_TOKEN_FILE", options, "credential.tokenFile");
                var settings = Configure(new ClientAssertionCredentialOptions(), options, caBundle);
                settings.DisableInstanceDiscovery = IsCustomAuthority(settings.AuthorityHost);
                return new ClientAssertionCredential(tenantId, clientId, token => ReadFederatedTokenAsync(tokenFile, owner, token), settings);
            }

            case AzureCredentialKind.ManagedIdentity:
            {
                var id = credential.ClientId is { } clientId ? ManagedIdentityId.FromUserAssignedClientId(clientId)
                    : credential.ManagedIdentityResourceId is { } resourceId ? ManagedIdentityId.FromUserAssignedResourceId(new ResourceIdentifier(resourceId))
                    : ManagedIdentityId.SystemAssigned;
                return new ManagedIdentityCredential(Configure(new ManagedIdentityCredentialOptions(id), options, caBundle));
            }

            case AzureCredentialKind.ClientSecret:
            {
                var secret = SecretFiles.ReadText(credential.SecretFile!, owner, "credential.secretFile");
                var settings = Configure(new ClientSecretCredentialOptions(), options, caBundle);
                settings.DisableInstanceDiscovery = IsCustomAuthority(settings.AuthorityHost);
                return new ClientSecretCredential(credential.TenantId, credential.ClientId, secret, settings);
            }

            case AzureCredentialKind.ClientCertificate:
            {
                // Azure.Identity reads the file (PEM with the private key, or PKCS#12 without a password) itself.
                SecretFiles.RequireOwnerOnly(credential.CertificateFile!, owner, "credential.certificateFile");
                var settings = Configure(new ClientCertificateCredentialOptions(), options, caBundle);
                settings.DisableInstanceDiscovery = IsCustomAuthority(settings.AuthorityHost);
                return new ClientCertificateCredential(credential.TenantId, credential.ClientId, credential.CertificateFile, settings);
            }

            default:
                throw options.Invalid("credential.type", $"unknown credential kind {credential.Kind}");
        }
    }

    private static string FromEnvironment(string variable, AzureKeyVaultRootKeyOptions options, string field) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value
            ? value
            : throw options.Invalid(field, $"is not set and neither is {variable} (set by the workload identity webhook)");

    private static async Task<string> ReadFederatedTokenAsync(string path, string owner, CancellationToken cancellationToken)
    {
        try
        {
            var token = (await File.ReadAllTextAsync(path, cancellationToken)).Trim();
            return token.Length > 0 ? token : throw new CredentialUnavailableException($"{owner}: federated token file {path} is empty");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CredentialUnavailableException($"{owner}: cannot read federated token file {path}: {e.Message}", e);
        }
    }

    private static T Configure<T>(T settings, AzureKeyVaultRootKeyOptions options, CaBundle? caBundle)
        where T : TokenCredentialOptions
    {
        if (options.Credential.AuthorityHost is { } authority)
        {
            settings.AuthorityHost = authority;
        }

        settings.Transport = new HttpClientTransport(CaBundle.CreateHandler(caBundle));
        settings.Retry.MaxRetries = 0;
        settings.Retry.NetworkTimeout = options.NetworkTimeout;
        settings.Diagnostics.IsLoggingContentEnabled = false; // token responses must never reach a log
        return settings;
    }

    /// <summary>
    /// MSAL validates an unknown authority by asking login.microsoftonline.com ("instance discovery"), which a
    /// disconnected Azure Stack hub or a loopback fake cannot answer; for those the authority is trusted as configured.
    /// </summary>
    private static bool IsCustomAuthority(Uri authority) =>
        !KnownAuthorityHosts.Contains(authority.Host, StringComparer.OrdinalIgnoreCase);
}
