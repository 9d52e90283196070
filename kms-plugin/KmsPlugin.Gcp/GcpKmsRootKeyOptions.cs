using System.Text.RegularExpressions;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Gcp;

/// <summary>Settings of one <c>provider: gcp</c> root key (docs/providers/gcp.md documents each one).</summary>
public sealed partial record GcpKmsRootKeyOptions
{
    public static readonly Uri DefaultEndpoint = new("https://cloudkms.googleapis.com");

    /// <summary>The OAuth scope of Cloud KMS (Cloud KMS REST reference, "Authorization scopes").</summary>
    public const string CloudKmsScope = "https://www.googleapis.com/auth/cloudkms";

    /// <summary>The operator's name of the root key (for messages).</summary>
    public required string Name { get; init; }

    /// <summary><c>projects/P/locations/L/keyRings/R/cryptoKeys/K</c>, a symmetric ENCRYPT_DECRYPT key (<c>cryptoKey</c>).</summary>
    public required string CryptoKey { get; init; }

    /// <summary>A pinned CryptoKeyVersion number (<c>cryptoKeyVersion</c>); null uses the key's primary version, read at open and then followed.</summary>
    public string? CryptoKeyVersion { get; init; }

    /// <summary>The Cloud KMS REST endpoint (<c>endpoint</c>): regional, Private Service Connect, or a test's fake.</summary>
    public Uri Endpoint { get; init; } = DefaultEndpoint;

    /// <summary>
    /// A credential JSON file (<c>credentialsFile</c>): a service-account key or an <c>external_account</c>
    /// (Workload Identity Federation) configuration. Null: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS,
    /// then the gcloud user credentials, then the GCE/GKE metadata server).
    /// </summary>
    public string? CredentialsFile { get; init; }

    /// <summary>PEM bundle of extra CAs trusted for TLS, for private endpoints and proxies (<c>caFile</c>).</summary>
    public string? CaFile { get; init; }

    /// <summary>Upper bound on one HTTP attempt (<c>networkTimeout</c>).</summary>
    public TimeSpan NetworkTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Retries of throttled and transient failures (the shared policy).</summary>
    public RetryPolicy Retry { get; init; } = RetryPolicy.Default;

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Name))
        {
            throw Invalid("name", "must not be empty");
        }

        if (string.IsNullOrEmpty(CryptoKey) || !CryptoKeyPattern().IsMatch(CryptoKey))
        {
            throw Invalid("cryptoKey", $"must be projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY, got '{CryptoKey}'");
        }

        if (CryptoKeyVersion is not null && (CryptoKeyVersion.Length is 0 or > 19 || !CryptoKeyVersion.All(char.IsAsciiDigit)))
        {
            throw Invalid("cryptoKeyVersion", $"must be a version number such as 3, got '{CryptoKeyVersion}'");
        }

        // The bearer token is a credential for the key: never over plain http.
        if (!Endpoint.IsAbsoluteUri || Endpoint.Scheme != Uri.UriSchemeHttps || Endpoint.AbsolutePath != "/" || Endpoint.Query.Length > 0)
        {
            throw Invalid("endpoint", $"must be an https:// base URL such as {DefaultEndpoint}, got {Endpoint}");
        }

        if (NetworkTimeout <= TimeSpan.Zero)
        {
            throw Invalid("networkTimeout", "must be positive");
        }

        if (Retry.MaxAttempts < 1)
        {
            throw Invalid("maxAttempts", "must be at least 1");
        }
    }

    internal KmsPluginException Invalid(string option, string problem) =>
        new(KmsErrorKind.RootKeyDenied, $"gcp root key '{Name}': option {option} {problem}");

    // Resource ids: project ids, locations, key ring and key names are letters, digits, '-' and '_' (Cloud KMS
    // "Object hierarchy"; key names up to 63 characters).
    [GeneratedRegex("^projects/[A-Za-z0-9._:-]{1,100}/locations/[A-Za-z0-9-]{1,63}/keyRings/[A-Za-z0-9_-]{1,63}/cryptoKeys/[A-Za-z0-9_-]{1,63}$")]
    private static partial Regex CryptoKeyPattern();
}
