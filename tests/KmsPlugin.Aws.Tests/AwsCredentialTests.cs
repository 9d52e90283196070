using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Aws.Tests;

/// <summary>
/// Credentials as the plugin gets them in production, against the fake's STS: explicit web identity (the IRSA
/// mechanism with a token file), whose JWT is read again at every refresh, and whose credentials sign the KMS calls
/// (the fake verifies SigV4 and the session token).
/// </summary>
public sealed class AwsCredentialTests : IAsyncLifetime, IDisposable
{
    private const string RoleArn = "arn:aws:iam::111122223333:role/kms-plugin";
    private readonly TempDirectory _dir = new();
    private FakeAwsKms _kms = null!;
    private FakeKmsKey _key = null!;

    public async Task InitializeAsync()
    {
        _kms = await FakeAwsKms.StartAsync();
        _key = _kms.CreateKey();
    }

    public async Task DisposeAsync()
    {
        await _kms.DisposeAsync();
    }

    public void Dispose() => _dir.Dispose();

    private AwsKmsRootKeyOptions WebIdentity(string tokenFile) => AwsTestOptions.For(_kms, _key.Arn) with
    {
        ExplicitCredentials = null,
        Credentials = new AwsCredentialOptions
        {
            Source = AwsCredentialSource.WebIdentity,
            RoleArn = RoleArn,
            TokenFile = tokenFile,
            StsEndpoint = _kms.Endpoint,
            SessionName = "node-1",
        },
    };

    [Fact]
    public async Task Web_identity_exchanges_the_token_file_at_STS_and_signs_KMS_calls_with_the_session_credentials()
    {
        var tokenFile = _dir.FilePath("token");
        await File.WriteAllTextAsync(tokenFile, "eyJhbGciOiJSUzI1NiJ9.first.sig\n");
        _kms.AcceptedWebIdentityTokens["eyJhbGciOiJSUzI1NiJ9.first.sig"] = true;

        using var root = await AwsKmsRootKey.OpenAsync(WebIdentity(tokenFile), CancellationToken.None);
        var kek = RandomNumberGenerator.GetBytes(32);
        var wrapped = await root.WrapAsync(kek, AwsTestOptions.Aad(), CancellationToken.None);
        using var unwrapped = await root.UnwrapAsync(wrapped, AwsTestOptions.Aad(), CancellationToken.None);

        Assert.Equal(kek, unwrapped.Span.ToArray());
        Assert.Equal(["eyJhbGciOiJSUzI1NiJ9.first.sig"], _kms.WebIdentityTokensSeen.Distinct());

        // Credentials are cached until shortly before they expire: one exchange served DescribeKey, Encrypt and Decrypt.
        Assert.Equal(1, _kms.Calls("AssumeRoleWithWebIdentity"));
    }

    [Fact]
    public async Task The_token_file_is_read_again_at_every_refresh_so_a_rotated_projected_token_is_used()
    {
        var tokenFile = _dir.FilePath("token");
        await File.WriteAllTextAsync(tokenFile, "jwt-generation-1");
        _kms.AcceptedWebIdentityTokens["jwt-generation-1"] = true;
        _kms.AcceptedWebIdentityTokens["jwt-generation-2"] = true;

        // Credentials with less than the 5-minute pre-emption window left are refreshed at the next call. The SDK's
        // RefreshingAWSCredentials (v4) does that in the background: the call goes on with the current credentials and
        // a refresh starts unless one is already running, so the rotated token reaches STS within the next few calls,
        // not necessarily at the very next one.
        _kms.StsCredentialLifetime = TimeSpan.FromMinutes(2);
        using var root = await AwsKmsRootKey.OpenAsync(WebIdentity(tokenFile), CancellationToken.None);
        await root.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), CancellationToken.None);

        await File.WriteAllTextAsync(tokenFile, "jwt-generation-2"); // the kubelet rotated the projected token
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!_kms.WebIdentityTokensSeen.Contains("jwt-generation-2") && DateTime.UtcNow < deadline)
        {
            await root.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), CancellationToken.None);
            await Task.Delay(20);
        }

        Assert.Contains("jwt-generation-2", _kms.WebIdentityTokensSeen);

        // Once STS has seen the new token, the old one is never sent again: the file is the only source.
        await root.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), CancellationToken.None);
        var afterRotation = _kms.WebIdentityTokensSeen.SkipWhile(t => t != "jwt-generation-2").ToArray();
        Assert.DoesNotContain("jwt-generation-1", afterRotation);
        Assert.Contains("jwt-generation-1", _kms.WebIdentityTokensSeen);
    }

    [Fact]
    public async Task An_STS_slower_than_the_request_timeout_fails_the_call_as_unavailable_with_bounded_exchanges()
    {
        var tokenFile = _dir.FilePath("token");
        await File.WriteAllTextAsync(tokenFile, "jwt-slow-sts");
        _kms.AcceptedWebIdentityTokens["jwt-slow-sts"] = true;
        _kms.StsLatency = TimeSpan.FromSeconds(30);
        var options = WebIdentity(tokenFile) with { RequestTimeout = TimeSpan.FromSeconds(1) };
        using var root = await AwsKmsRootKey.OpenAsync(options, CancellationToken.None); // by ARN: opens without KMS

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => root.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), CancellationToken.None));

        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
        Assert.Contains("timed out", error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("jwt-slow-sts", error.ToString(), StringComparison.Ordinal);

        // Every exchange is one STS request of at most requestTimeout, and the bound holds per attempt: the SDK asks
        // for credentials up to twice within one KMS call when the first resolution fails (seen with AWSSDK 4.x: two
        // exchanges per attempt), never more; no KMS request is sent without credentials.
        var attempts = options.Retry.MaxAttempts;
        Assert.InRange(_kms.Calls("AssumeRoleWithWebIdentity"), 1, 2 * attempts);
        Assert.Equal(0, _kms.Calls("Encrypt"));
    }

    [Fact]
    public async Task A_token_STS_rejects_stops_the_key_from_opening_as_denied_without_revealing_the_token()
    {
        var tokenFile = _dir.FilePath("token");
        await File.WriteAllTextAsync(tokenFile, "jwt-the-idp-does-not-know");

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => AwsKmsRootKey.OpenAsync(WebIdentity(tokenFile), CancellationToken.None));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("InvalidIdentityToken", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("jwt-the-idp-does-not-know", error.ToString(), StringComparison.Ordinal);
        Assert.Equal(1, _kms.Calls("AssumeRoleWithWebIdentity"));
        Assert.Equal(0, _kms.Calls("DescribeKey"));
    }

    [Fact]
    public async Task A_token_file_that_is_not_there_yet_is_a_transient_failure()
    {
        var tokenFile = _dir.FilePath("not-yet-projected");
        _kms.AcceptedWebIdentityTokens["late-token"] = true;

        // By ARN the key opens (the probe will report the problem), and the first call says what is missing.
        using var root = await AwsKmsRootKey.OpenAsync(WebIdentity(tokenFile), CancellationToken.None);
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => root.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), CancellationToken.None));
        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
        Assert.Contains(tokenFile, error.Message, StringComparison.Ordinal);

        await File.WriteAllTextAsync(tokenFile, "late-token");
        var wrapped = await root.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), CancellationToken.None);
        Assert.NotEmpty(wrapped);
    }
}
