using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KmsPlugin.Azure.Tests.Fakes;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Azure.Tests;

/// <summary>Each Azure.Identity credential the provider offers, against the fake Entra ID token endpoint.</summary>
public sealed class CredentialTests
{
    private static readonly byte[] Aad = "aad"u8.ToArray();

    [Fact]
    public async Task Workload_identity_presents_the_federated_token_file_as_client_assertion_for_the_configured_scope()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        using var key = await bed.OpenAsync();

        var request = Assert.Single(bed.Vault.TokenRequests);
        Assert.Equal("client_credentials", request["grant_type"]);
        Assert.Equal(FakeKeyVault.ClientId, request["client_id"]);
        Assert.Equal("urn:ietf:params:oauth:client-assertion-type:jwt-bearer", request["client_assertion_type"]);
        Assert.Equal(bed.Vault.FederatedToken, request["client_assertion"]);
        Assert.Equal(FakeKeyVault.Scope, request["scope"]);
        Assert.Empty(bed.Vault.UnknownRequests); // no instance discovery or metadata calls to a custom authority
    }

    [Fact]
    public async Task Workload_identity_rereads_the_token_file_when_kubelet_rotates_it()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        bed.Vault.TokenLifetime = TimeSpan.FromMinutes(2); // inside the refresh margin: every call asks for a token
        using var key = await bed.OpenAsync();
        await key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None);

        var rotated = bed.Vault.FederatedToken + ".rotated";
        bed.Vault.FederatedToken = rotated; // the old projected token is no longer accepted
        await File.WriteAllTextAsync(bed.TokenFile, rotated);
        await key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None);

        Assert.Equal(rotated, bed.Vault.TokenRequests[^1]["client_assertion"]);
    }

    [Fact]
    public async Task A_rejected_federated_token_stops_open_with_the_Entra_error_code_and_no_token_in_the_message()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        await File.WriteAllTextAsync(bed.TokenFile, "not-the-projected-token");

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => bed.OpenAsync());

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("AADSTS7000215", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("not-the-projected-token", error.Message, StringComparison.Ordinal);
        Assert.Single(bed.Vault.TokenRequests); // a refusal is not retried
    }

    [Fact]
    public async Task A_service_principal_secret_is_read_from_its_file()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        var secretFile = bed.Directory.FilePath("client-secret");
        await File.WriteAllTextAsync(secretFile, bed.Vault.ClientSecret + "\n");
        File.SetUnixFileMode(secretFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        using var key = await bed.OpenAsync(bed.Options() with
        {
            Credential = new AzureCredentialOptions
            {
                Kind = AzureCredentialKind.ClientSecret,
                TenantId = FakeKeyVault.TenantId,
                ClientId = FakeKeyVault.ClientId,
                SecretFile = secretFile,
                AuthorityHost = bed.Vault.BaseUri,
            },
        });
        using var _ = await key.UnwrapAsync(await key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None), Aad, CancellationToken.None);

        Assert.Equal(bed.Vault.ClientSecret, Assert.Single(bed.Vault.TokenRequests)["client_secret"]);
    }

    [Fact]
    public async Task A_secret_file_readable_by_others_is_refused_before_any_request()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        var secretFile = bed.Directory.FilePath("client-secret");
        await File.WriteAllTextAsync(secretFile, bed.Vault.ClientSecret);
        File.SetUnixFileMode(secretFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => bed.OpenAsync(bed.Options() with
        {
            Credential = new AzureCredentialOptions
            {
                Kind = AzureCredentialKind.ClientSecret,
                TenantId = FakeKeyVault.TenantId,
                ClientId = FakeKeyVault.ClientId,
                SecretFile = secretFile,
                AuthorityHost = bed.Vault.BaseUri,
            },
        }));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("chmod 600", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(bed.Vault.ClientSecret, error.Message, StringComparison.Ordinal);
        Assert.Empty(bed.Vault.TokenRequests);
    }

    [Fact]
    public async Task A_service_principal_certificate_signs_the_client_assertion()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=kms-plugin", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        bed.Vault.ClientCertificate = X509CertificateLoader.LoadCertificate(certificate.RawData);
        var pemFile = bed.Directory.FilePath("client.pem");
        await File.WriteAllTextAsync(pemFile, certificate.ExportCertificatePem() + "\n" + rsa.ExportPkcs8PrivateKeyPem() + "\n");
        File.SetUnixFileMode(pemFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        using var key = await bed.OpenAsync(bed.Options() with
        {
            Credential = new AzureCredentialOptions
            {
                Kind = AzureCredentialKind.ClientCertificate,
                TenantId = FakeKeyVault.TenantId,
                ClientId = FakeKeyVault.ClientId,
                CertificateFile = pemFile,
                AuthorityHost = bed.Vault.BaseUri,
            },
        });
        using var _ = await key.UnwrapAsync(await key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None), Aad, CancellationToken.None);

        var token = Assert.Single(bed.Vault.TokenRequests);
        Assert.False(token.ContainsKey("client_secret"));
        Assert.Equal(3, token["client_assertion"].Split('.').Length); // a signed JWT, verified by the fake
    }
}

/// <summary>Managed identity reads its endpoint from the process environment, so these tests run alone.</summary>
[CollectionDefinition(nameof(ProcessEnvironment), DisableParallelization = true)]
public sealed class ProcessEnvironment;

[Collection(nameof(ProcessEnvironment))]
public sealed class ManagedIdentityTests
{
    [Fact]
    public async Task A_user_assigned_managed_identity_gets_its_token_from_the_identity_endpoint()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        const string userAssigned = "5b3a6c1e-0b5f-4a7e-9c1d-2f6e8a9b0c1d";
        var saved = (Environment.GetEnvironmentVariable("IDENTITY_ENDPOINT"), Environment.GetEnvironmentVariable("IDENTITY_HEADER"));
        try
        {
            // The App Service / Container Apps flavour of managed identity: an endpoint and a secret header from the environment.
            Environment.SetEnvironmentVariable("IDENTITY_ENDPOINT", new Uri(bed.Vault.BaseUri, "msi/token").ToString());
            Environment.SetEnvironmentVariable("IDENTITY_HEADER", FakeKeyVault.ManagedIdentityHeader);
            using var key = await bed.OpenAsync(bed.Options() with
            {
                Credential = new AzureCredentialOptions { Kind = AzureCredentialKind.ManagedIdentity, ClientId = userAssigned },
            });
            var aad = "aad"u8.ToArray();
            using var _ = await key.UnwrapAsync(await key.WrapAsync(RandomNumberGenerator.GetBytes(32), aad, CancellationToken.None), aad, CancellationToken.None);

            var request = Assert.Single(bed.Vault.TokenRequests);
            Assert.Equal("https://vault.azure.net", request["resource"]);
            Assert.Equal(userAssigned, request["client_id"]);
        }
        finally
        {
            Environment.SetEnvironmentVariable("IDENTITY_ENDPOINT", saved.Item1);
            Environment.SetEnvironmentVariable("IDENTITY_HEADER", saved.Item2);
        }
    }
}
