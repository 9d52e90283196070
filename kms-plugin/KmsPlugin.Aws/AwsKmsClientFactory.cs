using Amazon;
using Amazon.KeyManagementService;
using Amazon.Runtime;

namespace KmsPlugin.Aws;

/// <summary>Builds the KMS client for one root key from its options.</summary>
internal static class AwsKmsClientFactory
{
    /// <summary>The client, and the credentials it uses if this root key owns them (to dispose with it).</summary>
    public static (AmazonKeyManagementServiceClient Client, AWSCredentials? OwnedCredentials) Create(AwsKmsRootKeyOptions options)
    {
        var region = options.EffectiveRegion();
        var config = new AmazonKeyManagementServiceConfig
        {
            // The SDK would retry 5xx, throttling and timeouts twice with its own backoff (up to ~2 s for throttling,
            // reference/feasibility.md section 3) on a clock that knows nothing of the gRPC deadline. RetryPolicy does
            // it instead, on the caller's token, and every attempt is visible to tests.
            MaxErrorRetry = 0,

            // Each attempt is bounded by requestTimeout on the plugin's own token (AwsKmsRootKey.CallAsync); the SDK's
            // Timeout is only a backstop behind it (unset, it would be the HttpClient default of 100 s per request).
            Timeout = options.RequestTimeout * 2,
            UseFIPSEndpoint = options.UseFipsEndpoint,
        };
        if (options.Endpoint is { } endpoint)
        {
            config.ServiceURL = endpoint.ToString();

            // With ServiceURL the SDK cannot infer the SigV4 scope from the host name (VPC endpoint names vary).
            config.AuthenticationRegion = region;
        }
        else if (region is not null)
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(region);
        }

        AWSCredentials? owned = null;
        var credentials = options.ExplicitCredentials;
        if (credentials is null && options.Credentials.Source == AwsCredentialSource.WebIdentity)
        {
            credentials = owned = new WebIdentityCredentials(options.Name, options.Credentials, region, options.RequestTimeout);
        }

        // Without explicit credentials the client resolves them per request through the SDK's default chain
        // (DefaultAWSCredentialsIdentityResolver), which caches them and refreshes them before they expire.
        var client = credentials is null ? new AmazonKeyManagementServiceClient(config) : new AmazonKeyManagementServiceClient(credentials, config);
        return (client, owned);
    }
}
