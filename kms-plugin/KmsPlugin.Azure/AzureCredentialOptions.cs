namespace KmsPlugin.Azure;

/// <summary>How an <c>azure</c> root key gets its Entra ID token.</summary>
public enum AzureCredentialKind
{
    /// <summary>
    /// AKS / Kubernetes workload identity: a projected service-account token (the federated token file) exchanged for
    /// an Entra ID token (client-assertion flow). The default, and the recommended one: no secret on the node.
    /// </summary>
    WorkloadIdentity,

    /// <summary>The VM's or node pool's system- or user-assigned managed identity (IMDS).</summary>
    ManagedIdentity,

    /// <summary>A service principal with a client secret read from a file.</summary>
    ClientSecret,

    /// <summary>A service principal with a certificate (PEM with its private key, or PKCS#12) read from a file.</summary>
    ClientCertificate,
}

/// <summary>The <c>credential</c> block of an <c>azure</c> root key.</summary>
public sealed record AzureCredentialOptions
{
    public AzureCredentialKind Kind { get; init; } = AzureCredentialKind.WorkloadIdentity;

    /// <summary>Directory (tenant) id; for workload identity defaults to <c>AZURE_TENANT_ID</c>.</summary>
    public string? TenantId { get; init; }

    /// <summary>Application (client) id; for workload identity defaults to <c>AZURE_CLIENT_ID</c>; for managed identity selects a user-assigned identity.</summary>
    public string? ClientId { get; init; }

    /// <summary>Workload identity: the federated token file; defaults to <c>AZURE_FEDERATED_TOKEN_FILE</c>.</summary>
    public string? TokenFile { get; init; }

    /// <summary>Client secret: the file holding it (mode 0600).</summary>
    public string? SecretFile { get; init; }

    /// <summary>Client certificate: PEM (certificate and private key) or PKCS#12 file (mode 0600).</summary>
    public string? CertificateFile { get; init; }

    /// <summary>Managed identity: a user-assigned identity's ARM resource id (alternative to <see cref="ClientId"/>).</summary>
    public string? ManagedIdentityResourceId { get; init; }

    /// <summary>
    /// The Entra ID authority (<c>authorityHost</c>): sovereign clouds (<c>https://login.chinacloudapi.cn/</c>,
    /// <c>https://login.microsoftonline.us/</c>), Azure Stack, or a test's fake. Defaults to <c>AZURE_AUTHORITY_HOST</c>,
    /// else the public cloud.
    /// </summary>
    public Uri? AuthorityHost { get; init; }

    internal void Validate(AzureKeyVaultRootKeyOptions owner)
    {
        if (AuthorityHost is not null && (!AuthorityHost.IsAbsoluteUri || AuthorityHost.Scheme != Uri.UriSchemeHttps))
        {
            throw owner.Invalid("credential.authorityHost", $"must be an https:// URL such as https://login.microsoftonline.com/, got {AuthorityHost}");
        }

        switch (Kind)
        {
            case AzureCredentialKind.WorkloadIdentity:
                break; // every field may come from the environment the workload identity webhook injects
            case AzureCredentialKind.ManagedIdentity:
                if (ClientId is not null && ManagedIdentityResourceId is not null)
                {
                    throw owner.Invalid("credential.clientId", "and credential.managedIdentityResourceId both select a user-assigned identity; set one");
                }

                break;
            case AzureCredentialKind.ClientSecret:
                RequireServicePrincipal(owner);
                if (string.IsNullOrEmpty(SecretFile))
                {
                    throw owner.Invalid("credential.secretFile", "is required for a client secret (secrets are read from files, never from the config)");
                }

                break;
            case AzureCredentialKind.ClientCertificate:
                RequireServicePrincipal(owner);
                if (string.IsNullOrEmpty(CertificateFile))
                {
                    throw owner.Invalid("credential.certificateFile", "is required for a client certificate");
                }

                break;
            default:
                throw owner.Invalid("credential.type", $"unknown credential kind {Kind}");
        }
    }

    private void RequireServicePrincipal(AzureKeyVaultRootKeyOptions owner)
    {
        if (string.IsNullOrEmpty(TenantId))
        {
            throw owner.Invalid("credential.tenantId", "is required for a service principal");
        }

        if (string.IsNullOrEmpty(ClientId))
        {
            throw owner.Invalid("credential.clientId", "is required for a service principal");
        }
    }
}
