using System.Globalization;
using Amazon.Runtime;
using RetryPolicy = KmsPlugin.Core.RootKeys.RetryPolicy;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Aws;

/// <summary>
/// Configuration of one <c>provider: aws</c> root key (the <c>aws:</c> block of a <c>rootKeys</c> entry).
/// No secret appears here: credentials come from the SDK's default chain (IRSA, EKS Pod Identity, instance profile)
/// or from a web-identity token file.
/// </summary>
public sealed record AwsKmsRootKeyOptions
{
    /// <summary>Per-attempt bound on one KMS request (the SDK's <c>ClientConfig.Timeout</c>); the default HttpClient one is 100 s.</summary>
    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Upper bound on the DescribeKey call (with retries) made while opening the key.</summary>
    public static readonly TimeSpan DefaultOpenTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The operator's name for this root key (<c>rootKeys[].name</c>); for logs and errors only.</summary>
    public required string Name { get; init; }

    /// <summary>
    /// The KMS key (<c>keyId</c>): a key ARN (recommended), an alias (<c>alias/name</c>), an alias ARN or a key id.
    /// Anything but a key ARN is resolved once, at open, with DescribeKey; the key ARN is what key_id is derived from.
    /// </summary>
    public required string KeyId { get; init; }

    /// <summary>AWS region (<c>region</c>). Optional with a key ARN (its region is used); otherwise the SDK's region chain (AWS_REGION, profile, IMDS).</summary>
    public string? Region { get; init; }

    /// <summary>
    /// KMS endpoint override (<c>endpoint</c>): a VPC interface endpoint or FIPS endpoint URL. The region still names the
    /// SigV4 signing scope.
    /// </summary>
    public Uri? Endpoint { get; init; }

    /// <summary>Use the region's FIPS 140 endpoint (<c>kms-fips.REGION.amazonaws.com</c>) when no endpoint is given (<c>fips</c>).</summary>
    public bool UseFipsEndpoint { get; init; }

    /// <summary>
    /// Extra encryption context sent with every Encrypt and Decrypt (<c>encryptionContext</c>), e.g. the cluster name,
    /// for IAM conditions and CloudTrail. Keys starting with <see cref="AwsEncryptionContext.ReservedPrefix"/> are the plugin's.
    /// </summary>
    public IReadOnlyDictionary<string, string> EncryptionContext { get; init; } = new Dictionary<string, string>();

    public AwsCredentialOptions Credentials { get; init; } = new();

    /// <summary>Bound on each KMS request attempt (<c>requestTimeout</c>).</summary>
    public TimeSpan RequestTimeout { get; init; } = DefaultRequestTimeout;

    /// <summary>Bound on resolving and checking the key at open (<c>DescribeKey</c> with retries).</summary>
    public TimeSpan OpenTimeout { get; init; } = DefaultOpenTimeout;

    /// <summary>
    /// Retries of throttled and transient failures. The SDK's own retries are switched off (MaxErrorRetry = 0) so this
    /// policy is the only one: its waits run on the caller's token, so no retry outlives the gRPC deadline.
    /// </summary>
    public RetryPolicy Retry { get; init; } = RetryPolicy.Default;

    /// <summary>Clock for retry waits (tests inject a fake one).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>
    /// Programmatic credentials, for embedding and tests only; never settable from the configuration file (it would
    /// put a secret key in it).
    /// </summary>
    internal AWSCredentials? ExplicitCredentials { get; init; }

    /// <summary>Checks every option and fails with a message naming the offending one.</summary>
    /// <exception cref="KmsPluginException">RootKeyDenied: configuration a retry will not fix.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Name))
        {
            throw Invalid("name", "must not be empty");
        }

        if (!AwsKeyReference.TryParse(KeyId, out var key, out var problem))
        {
            throw Invalid("keyId", problem);
        }

        if (Region is not null && !AwsKeyReference.IsRegionName(Region))
        {
            throw Invalid("region", $"'{Region}' is not an AWS region name such as us-east-1");
        }

        if (key.Region is not null && Region is not null && !string.Equals(key.Region, Region, StringComparison.Ordinal))
        {
            throw Invalid("region", $"is {Region} but keyId is an ARN in {key.Region}; KMS keys are regional (use the replica's ARN for a multi-Region key)");
        }

        if (Endpoint is not null)
        {
            if (AwsKeyReference.EndpointProblem(Endpoint) is { } endpointProblem)
            {
                throw Invalid("endpoint", endpointProblem);
            }

            if (Region is null && key.Region is null)
            {
                throw Invalid("region", "is required with endpoint (it is the SigV4 signing region) unless keyId is a key ARN");
            }

            if (UseFipsEndpoint)
            {
                throw Invalid("fips", "cannot be combined with endpoint; put the FIPS endpoint's URL in endpoint instead");
            }
        }

        AwsEncryptionContext.Validate(EncryptionContext, Invalid);
        Credentials.Validate(Invalid);

        if (RequestTimeout <= TimeSpan.Zero || RequestTimeout > TimeSpan.FromMinutes(5))
        {
            throw Invalid("requestTimeout", $"must be more than 0 and at most 5m, got {RequestTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)}s");
        }

        if (OpenTimeout <= TimeSpan.Zero)
        {
            throw Invalid("openTimeout", "must be more than 0");
        }

        ArgumentNullException.ThrowIfNull(Retry);
        ArgumentNullException.ThrowIfNull(Time);
    }

    /// <summary>The region requests are signed for: configured, else the key ARN's, else null (the SDK's region chain).</summary>
    internal string? EffectiveRegion()
    {
        if (Region is not null)
        {
            return Region;
        }

        return AwsKeyReference.TryParse(KeyId, out var key, out _) ? key.Region : null;
    }

    /// <summary>Key of <see cref="Exception.Data"/> naming the offending option (e.g. <c>credentials.roleArn</c>), so the
    /// configuration loader can report the YAML field.</summary>
    public const string OptionDataKey = "KmsPlugin.Option";

    /// <summary>Key of <see cref="Exception.Data"/> holding the problem without the root key's name.</summary>
    public const string ProblemDataKey = "KmsPlugin.Problem";

    internal KmsPluginException Invalid(string option, string problem)
    {
        var error = new KmsPluginException(KmsErrorKind.RootKeyDenied, $"aws root key '{Name}': option {option} {problem}");
        error.Data[OptionDataKey] = option;
        error.Data[ProblemDataKey] = problem;
        return error;
    }
}

/// <summary>Where the KMS client's credentials come from (<c>credentials.source</c>).</summary>
public enum AwsCredentialSource
{
    /// <summary>
    /// The SDK's default chain: environment variables, then IRSA (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN), then the
    /// shared profile, then EKS Pod Identity / ECS (AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE),
    /// then the EC2 instance profile (IMDS).
    /// </summary>
    Default,

    /// <summary>STS AssumeRoleWithWebIdentity with a JWT read from a file (re-read on every refresh), configured explicitly.</summary>
    WebIdentity,
}

/// <summary>The <c>credentials:</c> block of an aws root key.</summary>
public sealed record AwsCredentialOptions
{
    public AwsCredentialSource Source { get; init; } = AwsCredentialSource.Default;

    /// <summary>IAM role to assume (<c>roleArn</c>), for <see cref="AwsCredentialSource.WebIdentity"/>.</summary>
    public string? RoleArn { get; init; }

    /// <summary>File holding the OIDC token (<c>tokenFile</c>), e.g. a projected service-account token; re-read on every refresh.</summary>
    public string? TokenFile { get; init; }

    /// <summary>RoleSessionName (<c>sessionName</c>), visible in CloudTrail. 2-64 characters of [\w+=,.@-].</summary>
    public string SessionName { get; init; } = "k8s-kms-plugin";

    /// <summary>STS endpoint override (<c>stsEndpoint</c>), e.g. a VPC endpoint; by default the regional STS endpoint.</summary>
    public Uri? StsEndpoint { get; init; }

    /// <summary>How long the assumed-role credentials last (<c>duration</c>); STS allows 15 minutes up to the role's maximum.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromHours(1);

    internal void Validate(Func<string, string, KmsPluginException> invalid)
    {
        if (Source == AwsCredentialSource.Default)
        {
            if (RoleArn is not null || TokenFile is not null || StsEndpoint is not null)
            {
                throw invalid("credentials", "roleArn, tokenFile and stsEndpoint apply only to source: webIdentity");
            }

            return;
        }

        if (string.IsNullOrWhiteSpace(RoleArn) || !RoleArn.StartsWith("arn:", StringComparison.Ordinal) || !RoleArn.Contains(":role/", StringComparison.Ordinal))
        {
            throw invalid("credentials.roleArn", $"must be an IAM role ARN such as arn:aws:iam::111122223333:role/kms-plugin, got '{RoleArn}'");
        }

        if (string.IsNullOrWhiteSpace(TokenFile))
        {
            throw invalid("credentials.tokenFile", "is required for source: webIdentity (e.g. a projected service-account token)");
        }

        if (SessionName.Length is < 2 or > 64 || !SessionName.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '+' or '=' or ',' or '.' or '@' or '-'))
        {
            throw invalid("credentials.sessionName", $"must be 2-64 characters of letters, digits and _+=,.@-, got '{SessionName}'");
        }

        if (StsEndpoint is not null && AwsKeyReference.EndpointProblem(StsEndpoint) is { } endpointProblem)
        {
            throw invalid("credentials.stsEndpoint", endpointProblem);
        }

        if (Duration < TimeSpan.FromMinutes(15) || Duration > TimeSpan.FromHours(12))
        {
            throw invalid("credentials.duration", "must be from 15m to 12h (the STS limits)");
        }
    }
}
