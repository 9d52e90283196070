using KmsPlugin.Configuration;

namespace KmsPlugin.Gcp.Tests;

/// <summary>The <c>gcp</c> block of the plugin's YAML: what it accepts, and errors that name the field.</summary>
public sealed class ConfigTests
{
    private static string Yaml(string gcpBody) => $"""
        listen: unix:///tmp/kms.sock
        rootKeys:
          - name: gcpkms
            provider: gcp
            gcp:
        {gcpBody}
        """;

    [Fact]
    public void A_minimal_block_uses_ADC_and_the_public_endpoint()
    {
        var config = ConfigLoader.Parse(Yaml("      cryptoKey: projects/p/locations/global/keyRings/r/cryptoKeys/k"), "/etc/kms");
        var options = config.RootKeys[0].SettingsAs<GcpKmsRootKeyOptions>();

        Assert.Equal("projects/p/locations/global/keyRings/r/cryptoKeys/k", options.CryptoKey);
        Assert.Null(options.CryptoKeyVersion);
        Assert.Null(options.CredentialsFile);
        Assert.Equal(new Uri("https://cloudkms.googleapis.com"), options.Endpoint);
        Assert.Equal(3, options.Retry.MaxAttempts);
    }

    [Fact]
    public void Every_field_is_read_and_relative_files_resolve_against_the_config_directory()
    {
        var config = ConfigLoader.Parse(Yaml("""
                      cryptoKey: projects/p/locations/europe-west1/keyRings/r/cryptoKeys/k
                      cryptoKeyVersion: "4"
                      endpoint: https://cloudkms.europe-west1.rep.googleapis.com
                      credentialsFile: wif.json
                      caFile: ca.pem
                      networkTimeout: 3s
                      maxAttempts: 4
                      retryBaseDelay: 50ms
                      retryMaxDelay: 1s
                """), "/etc/kms");
        var options = config.RootKeys[0].SettingsAs<GcpKmsRootKeyOptions>();

        Assert.Equal("4", options.CryptoKeyVersion);
        Assert.Equal("/etc/kms/wif.json", options.CredentialsFile);
        Assert.Equal("/etc/kms/ca.pem", options.CaFile);
        Assert.Equal(new Uri("https://cloudkms.europe-west1.rep.googleapis.com"), options.Endpoint);
        Assert.Equal(TimeSpan.FromSeconds(3), options.NetworkTimeout);
        Assert.Equal(4, options.Retry.MaxAttempts);
    }

    [Theory]
    [InlineData("endpoint: https://cloudkms.googleapis.com", "rootKeys[0].gcp.cryptoKey")]
    [InlineData("cryptoKey: projects/p/keyRings/r/cryptoKeys/k", "rootKeys[0].gcp.cryptoKey")]
    [InlineData("cryptoKey: projects/p/locations/l/keyRings/r/cryptoKeys/k\n      cryptoKeyVersion: v2", "rootKeys[0].gcp.cryptoKeyVersion")]
    [InlineData("cryptoKey: projects/p/locations/l/keyRings/r/cryptoKeys/k\n      endpoint: http://cloudkms.googleapis.com", "rootKeys[0].gcp.endpoint")]
    [InlineData("cryptoKey: projects/p/locations/l/keyRings/r/cryptoKeys/k\n      credentials: {}", "rootKeys[0].gcp.credentials")]
    [InlineData("cryptoKey: projects/p/locations/l/keyRings/r/cryptoKeys/k\n      networkTimeout: forever", "rootKeys[0].gcp.networkTimeout")]
    public void Mistakes_are_reported_with_the_field_name(string body, string field)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Yaml("      " + body), "/etc/kms"));
        Assert.Equal(field, error.Field);
    }
}
