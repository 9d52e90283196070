using KmsPlugin.Configuration;

namespace KmsPlugin.Vault.Tests;

/// <summary>The <c>vault:</c> block of the configuration file: parsed into the provider's options, errors naming the field.</summary>
public sealed class VaultConfigTests
{
    private static PluginConfig Parse(string vaultBlock) => ConfigLoader.Parse($"""
        listen: unix:///run/kms/kms.sock
        rootKeys:
          - name: vault-prod
            provider: vault
            vault:
        {string.Join('\n', vaultBlock.Split('\n').Select(line => "      " + line))}
        """, "/etc/kms");

    [Fact]
    public void A_complete_block_becomes_the_providers_options()
    {
        var config = Parse("""
            address: https://vault.example.com:8200
            namespace: admin/platform
            mount: kms/transit
            key: k8s-secrets
            keyVersion: 3
            caFile: vault-ca.pem
            auth:
              method: kubernetes
              mount: k8s-cluster-1
              role: kms-plugin
              tokenFile: /var/run/secrets/vault/token
            networkTimeout: 3s
            maxAttempts: 5
            """);

        var options = config.RootKeys[0].SettingsAs<VaultTransitRootKeyOptions>();
        Assert.Equal(new Uri("https://vault.example.com:8200"), options.Address);
        Assert.Equal("admin/platform", options.Namespace);
        Assert.Equal("kms/transit", options.Mount);
        Assert.Equal("k8s-secrets", options.KeyName);
        Assert.Equal(3, options.KeyVersion);
        Assert.Equal("/etc/kms/vault-ca.pem", options.CaFile);
        Assert.Equal(VaultAuthMethod.Kubernetes, options.Auth.Method);
        Assert.Equal("k8s-cluster-1", options.Auth.EffectiveMount);
        Assert.Equal("/var/run/secrets/vault/token", options.Auth.EffectiveTokenFile);
        Assert.Equal(TimeSpan.FromSeconds(3), options.RequestTimeout);
        Assert.Equal(5, options.Retry.MaxAttempts);
    }

    [Fact]
    public void Kubernetes_auth_defaults_to_its_mount_and_the_pods_service_account_token()
    {
        var options = Parse("address: https://vault:8200\nkey: k8s\nauth:\n  method: kubernetes\n  role: kms-plugin").RootKeys[0]
            .SettingsAs<VaultTransitRootKeyOptions>();

        Assert.Equal("transit", options.Mount);
        Assert.Null(options.KeyVersion);
        Assert.Equal("kubernetes", options.Auth.EffectiveMount);
        Assert.Equal(VaultAuthOptions.DefaultServiceAccountTokenFile, options.Auth.EffectiveTokenFile);
    }

    [Theory]
    [InlineData("key: k8s\nauth:\n  method: token\n  tokenFile: /t", "rootKeys[0].vault.address", "required")]
    [InlineData("address: http://vault.example.com:8200\nkey: k8s\nauth:\n  method: token\n  tokenFile: /t", "rootKeys[0].vault.address", "plain http")]
    [InlineData("address: https://vault:8200/v1/transit\nkey: k8s\nauth:\n  method: token\n  tokenFile: /t", "rootKeys[0].vault.address", "base URL")]
    [InlineData("address: https://vault:8200\nauth:\n  method: token\n  tokenFile: /t", "rootKeys[0].vault.key", "required")]
    [InlineData("address: https://vault:8200\nkey: k8s", "rootKeys[0].vault.auth", "required")]
    [InlineData("address: https://vault:8200\nkey: k8s\nkeyVersion: 0\nauth:\n  method: token\n  tokenFile: /t", "rootKeys[0].vault.keyVersion", "whole number")]
    [InlineData("address: https://vault:8200\nkey: k8s\nmount: /transit/\nauth:\n  method: token\n  tokenFile: /t", "rootKeys[0].vault.mount", "mount path")]
    [InlineData("address: https://vault:8200\nkey: k8s\nauth:\n  method: userpass", "rootKeys[0].vault.auth.method", "must be one of")]
    [InlineData("address: https://vault:8200\nkey: k8s\nauth:\n  method: kubernetes", "rootKeys[0].vault.auth.role", "required")]
    [InlineData("address: https://vault:8200\nkey: k8s\nauth:\n  method: jwt\n  role: r", "rootKeys[0].vault.auth.tokenFile", "required")]
    [InlineData("address: https://vault:8200\nkey: k8s\nauth:\n  method: approle\n  roleId: x", "rootKeys[0].vault.auth.secretIdFile", "required")]
    [InlineData("address: https://vault:8200\nkey: k8s\nauth:\n  method: approle\n  secretIdFile: /s", "rootKeys[0].vault.auth.roleId", "exactly one")]
    [InlineData("address: https://vault:8200\nkey: k8s\nauth:\n  method: token", "rootKeys[0].vault.auth.tokenFile", "never from the configuration")]
    [InlineData("address: https://vault:8200\nkey: k8s\nauth:\n  method: token\n  token: hvs.secret", "rootKeys[0].vault.auth.token", "unknown field")]
    [InlineData("address: https://vault:8200\nkey: k8s\nauth:\n  method: token\n  tokenFile: /t\n  role: r", "rootKeys[0].vault.auth.role", "does not apply")]
    public void A_bad_block_fails_naming_the_field(string block, string field, string problem)
    {
        var error = Assert.Throws<ConfigException>(() => Parse(block));

        Assert.Equal(field, error.Field);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }
}
