using System.Text;
using Amazon.Runtime;
using Amazon.SecurityToken;
using Amazon.SecurityToken.Model;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Aws;

/// <summary>
/// Credentials from STS AssumeRoleWithWebIdentity with an OIDC token read from a file — the IRSA mechanism, configured
/// explicitly (<c>credentials.source: webIdentity</c>) instead of through AWS_* environment variables.
/// </summary>
/// <remarks>
/// Why not the SDK's AssumeRoleWithWebIdentityCredentials: its options have no STS endpoint, so it cannot use an STS
/// VPC endpoint on a control plane without internet access (nor a test fake). The token file is read again on every
/// refresh because the kubelet rotates projected service-account tokens (by default hourly, at 80 % of their life).
/// The call is unsigned (AssumeRoleWithWebIdentity authenticates with the token itself). The token is sent to STS only;
/// it never appears in a message.
/// </remarks>
internal sealed class WebIdentityCredentials : RefreshingAWSCredentials
{
    /// <summary>A JWT is a few KiB at most; refuse to send anything that is clearly not one.</summary>
    private const int MaxTokenBytes = 16 * 1024;

    private readonly string _rootKeyName;
    private readonly AwsCredentialOptions _options;
    private readonly AmazonSecurityTokenServiceClient _sts;
    private readonly TimeSpan _requestTimeout;

    public WebIdentityCredentials(string rootKeyName, AwsCredentialOptions options, string? region, TimeSpan requestTimeout)
    {
        _rootKeyName = rootKeyName;
        _options = options;
        _requestTimeout = requestTimeout;

        // Refresh 5 minutes before expiry so a request never starts with credentials about to lapse.
        PreemptExpiryTime = TimeSpan.FromMinutes(5);
        var config = new AmazonSecurityTokenServiceConfig
        {
            // Retries happen around the whole KMS call (RetryPolicy), not inside the credential fetch.
            MaxErrorRetry = 0,

            // The exchange is bounded by requestTimeout on a token of ours (as each KMS attempt is, AwsKmsRootKey):
            // the SDK's own Timeout, a backstop here, may re-send a timed-out request within the call.
            Timeout = requestTimeout * 2,
        };
        if (options.StsEndpoint is { } endpoint)
        {
            config.ServiceURL = endpoint.ToString();
            config.AuthenticationRegion = region ?? "us-east-1";
        }
        else if (region is not null)
        {
            // The regional endpoint (sts.REGION.amazonaws.com), as AWS recommends over the global one.
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(region);
        }

        _sts = new AmazonSecurityTokenServiceClient(new AnonymousAWSCredentials(), config);
    }

    protected override CredentialsRefreshState GenerateNewCredentials() => GenerateNewCredentialsAsync().GetAwaiter().GetResult();

    protected override async Task<CredentialsRefreshState> GenerateNewCredentialsAsync()
    {
        var token = ReadToken();
        AssumeRoleWithWebIdentityResponse response;
        using var timeout = new CancellationTokenSource(_requestTimeout);
        try
        {
            response = await _sts.AssumeRoleWithWebIdentityAsync(new AssumeRoleWithWebIdentityRequest
            {
                RoleArn = _options.RoleArn,
                RoleSessionName = _options.SessionName,
                WebIdentityToken = token,
                DurationSeconds = (int)_options.Duration.TotalSeconds,
            }, timeout.Token);
        }
        catch (Exception e) when (e is not KmsPluginException)
        {
            throw AwsErrorClassifier.ToException(_rootKeyName, "STS AssumeRoleWithWebIdentity", e);
        }

        var credentials = response.Credentials;
        if (credentials?.AccessKeyId is null || credentials.SecretAccessKey is null || credentials.SessionToken is null || credentials.Expiration is null)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                $"aws root key '{_rootKeyName}': STS AssumeRoleWithWebIdentity returned no credentials for role {_options.RoleArn}");
        }

        return new CredentialsRefreshState(
            new ImmutableCredentials(credentials.AccessKeyId, credentials.SecretAccessKey, credentials.SessionToken),
            credentials.Expiration.Value.ToUniversalTime());
    }

    private string ReadToken()
    {
        var path = _options.TokenFile!;
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                // The kubelet writes a projected token shortly after the pod starts; retrying is the right move.
                throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                    $"aws root key '{_rootKeyName}': credentials.tokenFile {path} does not exist");
            }

            if (info.Length > MaxTokenBytes)
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyDenied,
                    $"aws root key '{_rootKeyName}': credentials.tokenFile {path} is {info.Length} bytes, too large for an OIDC token");
            }

            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                $"aws root key '{_rootKeyName}': cannot read credentials.tokenFile {path}: {e.Message}", e);
        }

        var token = Encoding.UTF8.GetString(bytes).Trim();
        if (token.Length == 0)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"aws root key '{_rootKeyName}': credentials.tokenFile {path} is empty");
        }

        return token;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _sts.Dispose();
        }

        base.Dispose(disposing);
    }
}
