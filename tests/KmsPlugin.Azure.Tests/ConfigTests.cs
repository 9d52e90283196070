using KmsPlugin.Azure.Tests.Fakes;
using KmsPlugin.Configuration;

namespace KmsPlugin.Azure.Tests;

/// <summary>The <c>azure</c> block of the plugin's YAML: what it accepts, and errors that name the field.</summary>
public sealed class ConfigTests
{
    private static string Yaml(string azureBody) => $"""
        listen: unix:///tmp/kms.sock
        rootKeys:
          - name: akv
            provider: azure
            azure:
        {azureBody}
        """;

    private const string Minimal = """
              vaultUrl: https://myvault.vault.azure.net
              keyName: kek
              credential:
                type: workloadIdentity
        """;

    [Fact]
    public void A_minimal_workload_identity_block_parses_with_the_documented_defaults()
    {
        var config = ConfigLoader.Parse(Yaml(Minimal), "/etc/kms");
        var options = config.RootKeys[0].SettingsAs<AzureKeyVaultRootKeyOptions>();

        Assert.Equal(new Uri("https://myvault.vault.azure.net"), options.VaultUri);
        Assert.Null(options.KeyVersion);
        Assert.Equal("RSA-OAEP-256", options.Algorithm);
        Assert.Equal("7.4", options.ApiVersion);
        Assert.Equal("https://vault.azure.net/.default", options.EffectiveScope);
        Assert.Equal(AzureCredentialKind.WorkloadIdentity, options.Credential.Kind);
        Assert.Equal(TimeSpan.FromSeconds(5), options.NetworkTimeout);
        Assert.Equal(3, options.Retry.MaxAttempts);
    }

    [Fact]
    public void Every_field_is_read_and_relative_files_resolve_against_the_config_directory()
    {
        var config = ConfigLoader.Parse(Yaml("""
                      vaultUrl: https://myhsm.managedhsm.azure.net
                      keyName: kek
                      keyVersion: 0123456789abcdef0123456789abcdef
                      algorithm: A256KW
                      apiVersion: "7.5"
                      scope: https://managedhsm.azure.net/.default
                      caFile: ca.pem
                      networkTimeout: 3s
                      maxAttempts: 5
                      retryBaseDelay: 200ms
                      retryMaxDelay: 4s
                      credential:
                        type: clientSecret
                        tenantId: t
                        clientId: c
                        secretFile: secret
                        authorityHost: https://login.microsoftonline.us/
                """), "/etc/kms");
        var options = config.RootKeys[0].SettingsAs<AzureKeyVaultRootKeyOptions>();

        Assert.Equal("0123456789abcdef0123456789abcdef", options.KeyVersion);
        Assert.Equal("A256KW", options.Algorithm);
        Assert.Equal("7.5", options.ApiVersion);
        Assert.Equal("/etc/kms/ca.pem", options.CaFile);
        Assert.Equal("/etc/kms/secret", options.Credential.SecretFile);
        Assert.Equal(new Uri("https://login.microsoftonline.us/"), options.Credential.AuthorityHost);
        Assert.Equal(5, options.Retry.MaxAttempts);
        Assert.Equal(TimeSpan.FromSeconds(4), options.Retry.MaxDelay);
    }

    [Theory]
    [InlineData("vaultUrl: http://myvault.vault.azure.net\n      keyName: kek\n      credential:\n        type: workloadIdentity", "rootKeys[0].azure.vaultUrl")]
    [InlineData("vaultUrl: https://myvault.vault.azure.net\n      credential:\n        type: workloadIdentity", "rootKeys[0].azure.keyName")]
    [InlineData("vaultUrl: https://myvault.vault.azure.net\n      keyName: kek\n      algorithm: RSA1_5\n      credential:\n        type: workloadIdentity", "rootKeys[0].azure.algorithm")]
    [InlineData("vaultUrl: https://myvault.vault.azure.net\n      keyName: kek", "rootKeys[0].azure.credential")]
    [InlineData("vaultUrl: https://myvault.vault.azure.net\n      keyName: kek\n      credential:\n        type: password", "rootKeys[0].azure.credential.type")]
    [InlineData("vaultUrl: https://myvault.vault.azure.net\n      keyName: kek\n      credential:\n        type: clientSecret\n        tenantId: t\n        clientId: c", "rootKeys[0].azure.credential.secretFile")]
    [InlineData("vaultUrl: https://myvault.vault.azure.net\n      keyName: kek\n      credential:\n        type: clientSecret\n        tenantId: t\n        clientId: c\n        secret: hunter2", "rootKeys[0].azure.credential.secret")]
    [InlineData("vaultUrl: https://myvault.vault.azure.net\n      keyName: kek\n      credential:\n        type: managedIdentity\n        tokenFile: /x", "rootKeys[0].azure.credential.tokenFile")]
    [InlineData("vaultUrl: https://myvault.vault.azure.net\n      keyName: kek\n      maxAttempts: 0\n      credential:\n        type: workloadIdentity", "rootKeys[0].azure.maxAttempts")]
    [InlineData("vaultUrl: https://myvault.vault.azure.net\n      keyName: kek\n      keyVault: x\n      credential:\n        type: workloadIdentity", "rootKeys[0].azure.keyVault")]
    public void Mistakes_are_reported_with_the_field_name(string body, string field)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Yaml("      " + body), "/etc/kms"));
        Assert.Equal(field, error.Field);
    }

    [Fact]
    public void The_fake_Managed_HSM_does_RFC_3394_key_wrap()
    {
        // RFC 3394 section 4.6: 256 bits of key data with a 256-bit KEK.
        var kek = Convert.FromHexString("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
        var data = Convert.FromHexString("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
        var expected = Convert.FromHexString("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21");

        Assert.Equal(expected, AesKeyWrap.Wrap(kek, data));
        Assert.Equal(data, AesKeyWrap.Unwrap(kek, expected));
        expected[0] ^= 1;
        Assert.Null(AesKeyWrap.Unwrap(kek, expected));
    }
}
