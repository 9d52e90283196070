using System.Security.Cryptography;
using System.Text.Json.Nodes;
using KmsPlugin.Core.Errors;
using KmsPlugin.Gcp.Tests.Fakes;

namespace KmsPlugin.Gcp.Tests;

/// <summary>Each Google credential the provider accepts, against the fake token endpoints.</summary>
public sealed class CredentialTests
{
    private static readonly byte[] Aad = "aad"u8.ToArray();

    [Fact]
    public async Task Workload_identity_federation_exchanges_the_token_file_at_STS_for_the_Cloud_KMS_scope()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        using var key = await bed.OpenAsync();
        using var _ = await key.UnwrapAsync(await key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None), Aad, CancellationToken.None);

        var exchange = Assert.Single(bed.Kms.TokenRequests);
        Assert.Equal("/sts/v1/token", exchange["(path)"]);
        Assert.Equal("urn:ietf:params:oauth:grant-type:token-exchange", exchange["grant_type"]);
        Assert.Equal(FakeCloudKms.Audience, exchange["audience"]);
        Assert.Equal(bed.Kms.SubjectToken, exchange["subject_token"]);
        Assert.Contains("https://www.googleapis.com/auth/cloudkms", exchange["scope"], StringComparison.Ordinal);
        Assert.Empty(bed.Kms.UnknownRequests);
    }

    [Fact]
    public async Task A_rejected_subject_token_is_denied_without_the_token_in_the_message()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        await File.WriteAllTextAsync(bed.SubjectTokenFile, "not-the-service-account-token");

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => bed.OpenAsync());

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("invalid_grant", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("not-the-service-account-token", error.Message, StringComparison.Ordinal);
        Assert.Single(bed.Kms.TokenRequests);
    }

    [Fact]
    public async Task A_service_account_key_file_signs_a_JWT_bearer_assertion_at_its_token_uri()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        using var rsa = RSA.Create(2048);
        bed.Kms.ServiceAccountKey = rsa;
        var keyFile = WriteServiceAccountKey(bed, rsa);

        using var key = await bed.OpenAsync(bed.Options() with { CredentialsFile = keyFile });
        using var _ = await key.UnwrapAsync(await key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None), Aad, CancellationToken.None);

        var request = Assert.Single(bed.Kms.TokenRequests);
        Assert.Equal("/oauth2/token", request["(path)"]);
        Assert.Equal("urn:ietf:params:oauth:grant-type:jwt-bearer", request["grant_type"]);
    }

    [Fact]
    public async Task A_service_account_key_readable_by_others_is_refused()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        using var rsa = RSA.Create(2048);
        var keyFile = WriteServiceAccountKey(bed, rsa);
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => bed.OpenAsync(bed.Options() with { CredentialsFile = keyFile }));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("chmod 600", error.Message, StringComparison.Ordinal);
        Assert.Empty(bed.Kms.TokenRequests);
    }

    [Theory]
    [InlineData("""{"type":"authorized_user","client_id":"x","client_secret":"y","refresh_token":"z"}""", "authorized_user")]
    [InlineData("""{"type":"external_account","audience":"a","subject_token_type":"t","token_url":"https://sts.googleapis.com/v1/token","credential_source":{"executable":{"command":"/bin/sh -c id"}}}""", "executable")]
    public async Task Credential_files_of_other_kinds_are_refused_by_type(string json, string fragment)
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        var file = bed.Directory.FilePath("other.json");
        await File.WriteAllTextAsync(file, json);
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => bed.OpenAsync(bed.Options() with { CredentialsFile = file }));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains(fragment, error.Message, StringComparison.Ordinal);
        Assert.Empty(bed.Kms.TokenRequests);
    }

    internal static string WriteServiceAccountKey(GcpTestBed bed, RSA rsa)
    {
        var keyFile = bed.Directory.FilePath("service-account.json");
        File.WriteAllText(keyFile, new JsonObject
        {
            ["type"] = "service_account",
            ["project_id"] = "kms-test",
            ["private_key_id"] = "0123456789abcdef",
            ["private_key"] = rsa.ExportPkcs8PrivateKeyPem() + "\n",
            ["client_email"] = FakeCloudKms.ServiceAccountEmail,
            ["client_id"] = "123456789",
            ["token_uri"] = new Uri(bed.Kms.BaseUri, "oauth2/token").ToString(),
        }.ToJsonString());
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return keyFile;
    }
}

/// <summary>Application Default Credentials read the process environment, so these tests run alone.</summary>
[CollectionDefinition(nameof(ProcessEnvironment), DisableParallelization = true)]
public sealed class ProcessEnvironment;

[Collection(nameof(ProcessEnvironment))]
public sealed class ApplicationDefaultCredentialTests
{
    [Fact]
    public async Task Without_credentialsFile_GOOGLE_APPLICATION_CREDENTIALS_is_used()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        var saved = Environment.GetEnvironmentVariable("GOOGLE_APPLICATION_CREDENTIALS");
        try
        {
            Environment.SetEnvironmentVariable("GOOGLE_APPLICATION_CREDENTIALS", bed.ExternalAccountFile);
            using var key = await bed.OpenAsync(bed.Options() with { CredentialsFile = null });
            var aad = "aad"u8.ToArray();
            using var _ = await key.UnwrapAsync(await key.WrapAsync(RandomNumberGenerator.GetBytes(32), aad, CancellationToken.None), aad, CancellationToken.None);

            Assert.Equal("/sts/v1/token", Assert.Single(bed.Kms.TokenRequests)["(path)"]);
        }
        finally
        {
            Environment.SetEnvironmentVariable("GOOGLE_APPLICATION_CREDENTIALS", saved);
        }
    }
}
