using KmsPlugin.Configuration;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Vault.Tests;

/// <summary>
/// The plugin configured from YAML against the Transit fake, as the end-to-end and doctor tests run it: Transit key
/// <see cref="KeyName"/>, Kubernetes auth with the projected service-account token in <c>sa-token</c> (a path relative
/// to the test's directory), optionally in a Vault namespace, tiny retry waits.
/// </summary>
internal sealed class VaultPluginBed : IAsyncDisposable
{
    public const string KeyName = "k8s-secrets";
    public const string Jwt = "projected-sa-jwt";

    private VaultPluginBed(FakeVault vault, string? vaultNamespace)
    {
        Vault = vault;
        Namespace = vaultNamespace;
        vault.Namespace = vaultNamespace;
        Key = vault.CreateKey(KeyName);
        vault.AcceptedJwts[Jwt] = true;
        File.WriteAllText(Directory.FilePath("sa-token"), Jwt);
    }

    public FakeVault Vault { get; }

    public FakeTransitKey Key { get; }

    public TempDirectory Directory { get; } = new();

    public string? Namespace { get; }

    public static async Task<VaultPluginBed> StartAsync(string? vaultNamespace = null) => new(await FakeVault.StartAsync(), vaultNamespace);

    /// <summary>A <c>rootKeys</c> item for the fake (<c>"  - name: ..."</c>), following the key's latest version unless pinned.</summary>
    public string RootKeyYaml(string name = "vault-prod", string keyName = KeyName, int? keyVersion = null) => $"""
          - name: {name}
            provider: vault
            vault:
              address: {Vault.Address.ToString().TrimEnd('/')}
              key: {keyName}
        {(Namespace is null ? "" : $"      namespace: {Namespace}\n")}{(keyVersion is null ? "" : $"      keyVersion: {keyVersion}\n")}      networkTimeout: 1s
              retryBaseDelay: 1ms
              retryMaxDelay: 5ms
              auth:
                method: kubernetes
                role: {FakeVault.KubernetesRole}
                tokenFile: sa-token
        """;

    /// <summary>The key_id of <see cref="RootKeyYaml"/>'s key at <paramref name="version"/>.</summary>
    public string KeyIdAt(int version, string keyName = KeyName) => KeyIds.Derive("vault", VaultTransitRootKey.Identity(new VaultTransitRootKeyOptions
    {
        Name = "vault-prod",
        Address = Vault.Address,
        Namespace = Namespace,
        KeyName = keyName,
        Auth = new VaultAuthOptions { Method = VaultAuthMethod.Kubernetes, Role = FakeVault.KubernetesRole },
    }, version));

    /// <summary>A whole plugin configuration with the one versionless entry, parsed as the plugin parses its file (a fresh socket each call).</summary>
    public PluginConfig PluginConfig(string keyName = KeyName, int? healthPort = null) =>
        PluginYaml.Parse(Directory, [RootKeyYaml(keyName: keyName)], healthPort, "rootKeyTimeout: 3s");

    /// <summary>The plugin on <see cref="PluginConfig"/>, after its first probe.</summary>
    public async Task<PluginHost> StartPluginAsync(string keyName = KeyName)
    {
        var plugin = await PluginHost.StartAsync(PluginConfig(keyName));
        await plugin.WaitForProbeAsync();
        return plugin;
    }

    public async ValueTask DisposeAsync()
    {
        await Vault.DisposeAsync();
        Directory.Dispose();
    }
}
