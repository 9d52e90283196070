using KmsPlugin.Azure.Tests.Fakes;
using KmsPlugin.Configuration;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Azure.Tests;

/// <summary>
/// One fake vault + Entra ID on loopback TLS, a private directory with the test CA as the plugin's <c>caFile</c> and
/// a federated token file, and the options/YAML that point the real provider at them with workload identity.
/// Retry delays are tiny so fault tests stay fast; the retry counts are the production defaults.
/// </summary>
internal sealed class AzureTestBed : IAsyncDisposable
{
    public const string KeyName = "kek";

    private AzureTestBed(FakeKeyVault vault, TempDirectory directory)
    {
        Vault = vault;
        Directory = directory;
        CaFile = LoopbackTls.Shared.WriteCaFile(directory);
        TokenFile = directory.FilePath("azure-identity-token");
        File.WriteAllText(TokenFile, vault.FederatedToken);
    }

    public FakeKeyVault Vault { get; }

    public TempDirectory Directory { get; }

    public string CaFile { get; }

    public string TokenFile { get; }

    public static readonly RetryPolicy FastRetry = new() { MaxAttempts = 3, BaseDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(50) };

    public static async Task<AzureTestBed> StartAsync()
    {
        var vault = await FakeKeyVault.StartAsync();
        return new AzureTestBed(vault, new TempDirectory());
    }

    public AzureCredentialOptions WorkloadIdentity => new()
    {
        Kind = AzureCredentialKind.WorkloadIdentity,
        TenantId = FakeKeyVault.TenantId,
        ClientId = FakeKeyVault.ClientId,
        TokenFile = TokenFile,
        AuthorityHost = Vault.BaseUri,
    };

    public AzureKeyVaultRootKeyOptions Options(string? version = null, string algorithm = "RSA-OAEP-256", string name = "akv", string keyName = KeyName) => new()
    {
        Name = name,
        VaultUri = new Uri(Vault.VaultUrl),
        KeyName = keyName,
        KeyVersion = version,
        Algorithm = algorithm,
        Scope = FakeKeyVault.Scope,
        CaFile = CaFile,
        NetworkTimeout = TimeSpan.FromSeconds(2),
        Retry = FastRetry,
        Credential = WorkloadIdentity,
    };

    public Task<AzureKeyVaultRootKey> OpenAsync(AzureKeyVaultRootKeyOptions? options = null) =>
        AzureKeyVaultRootKey.OpenAsync(options ?? Options(), CancellationToken.None);

    /// <summary>A root-key entry in the plugin's YAML for this vault (indented for a rootKeys list item).</summary>
    public string RootKeyYaml(string name = "akv", string? version = null, string keyName = KeyName) => $"""
          - name: {name}
            provider: azure
            azure:
              vaultUrl: {Vault.VaultUrl}
              keyName: {keyName}
        {(version is null ? "" : $"      keyVersion: {version}\n")}      scope: {FakeKeyVault.Scope}
              caFile: {CaFile}
              networkTimeout: 2s
              retryBaseDelay: 1ms
              retryMaxDelay: 50ms
              credential:
                type: workloadIdentity
                tenantId: {FakeKeyVault.TenantId}
                clientId: {FakeKeyVault.ClientId}
                tokenFile: {TokenFile}
                authorityHost: {Vault.BaseUri}
        """;

    /// <summary>A whole plugin config with the given root-key entries, parsed as the plugin parses its file (a fresh socket each call).</summary>
    public PluginConfig PluginConfig(params string[] rootKeys) => PluginYaml.Parse(Directory, rootKeys);

    public async ValueTask DisposeAsync()
    {
        await Vault.DisposeAsync();
        Directory.Dispose();
    }
}
