using System.Net;
using System.Text.RegularExpressions;

namespace KmsPlugin.Aws;

/// <summary>What kind of KMS key identifier the operator configured (AWS KMS developer guide, "Key identifiers (KeyId)").</summary>
internal enum AwsKeyReferenceKind
{
    /// <summary><c>arn:aws:kms:us-east-1:111122223333:key/1234abcd-…</c> (or <c>key/mrk-…</c> for multi-Region keys).</summary>
    KeyArn,

    /// <summary><c>arn:aws:kms:us-east-1:111122223333:alias/name</c>.</summary>
    AliasArn,

    /// <summary><c>alias/name</c>.</summary>
    AliasName,

    /// <summary><c>1234abcd-12ab-34cd-56ef-1234567890ab</c> or <c>mrk-…</c>.</summary>
    KeyId,
}

/// <summary>A parsed KMS key identifier; <see cref="Region"/> is known only for ARNs.</summary>
internal readonly record struct AwsKeyReference(AwsKeyReferenceKind Kind, string Value, string? Region)
{
    // arn:PARTITION:kms:REGION:ACCOUNT:key/ID or alias/NAME. Partitions: aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc.
    private static readonly Regex ArnPattern = new(
        @"^arn:aws(-[a-z]+)*:kms:(?<region>[a-z]{2}(-[a-z]+)+-\d+):\d{12}:(?<resource>key/(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|alias/[A-Za-z0-9/_-]{1,250})$",
        RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture);

    private static readonly Regex KeyIdPattern = new(@"^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$",
        RegexOptions.CultureInvariant);

    private static readonly Regex AliasPattern = new(@"^alias/[A-Za-z0-9/_-]{1,250}$", RegexOptions.CultureInvariant);

    private static readonly Regex RegionPattern = new(@"^[a-z]{2}(-[a-z]+)+-\d+$", RegexOptions.CultureInvariant);

    public static bool IsRegionName(string region) => RegionPattern.IsMatch(region);

    public static bool TryParse(string? text, out AwsKeyReference reference, out string problem)
    {
        reference = default;
        problem = "";
        if (string.IsNullOrWhiteSpace(text))
        {
            problem = "is required: a key ARN (recommended), alias/NAME, an alias ARN or a key id";
            return false;
        }

        if (text.StartsWith("arn:", StringComparison.Ordinal))
        {
            var match = ArnPattern.Match(text);
            if (!match.Success)
            {
                problem = $"'{text}' is not a KMS key or alias ARN (arn:aws:kms:REGION:ACCOUNT:key/ID or …:alias/NAME)";
                return false;
            }

            var kind = match.Groups["resource"].Value.StartsWith("key/", StringComparison.Ordinal) ? AwsKeyReferenceKind.KeyArn : AwsKeyReferenceKind.AliasArn;
            reference = new AwsKeyReference(kind, text, match.Groups["region"].Value);
            return true;
        }

        if (AliasPattern.IsMatch(text))
        {
            if (text.StartsWith("alias/aws/", StringComparison.Ordinal))
            {
                // AWS managed keys cannot be used by a customer's own Encrypt calls for another service, and their key
                // policy cannot be changed to grant the plugin's role.
                problem = $"'{text}' is an AWS managed key; create a customer managed symmetric key for the plugin";
                return false;
            }

            reference = new AwsKeyReference(AwsKeyReferenceKind.AliasName, text, null);
            return true;
        }

        if (KeyIdPattern.IsMatch(text))
        {
            reference = new AwsKeyReference(AwsKeyReferenceKind.KeyId, text, null);
            return true;
        }

        problem = $"'{text}' is not a key ARN, alias/NAME, alias ARN or key id";
        return false;
    }

    /// <summary>Why an endpoint URL is not acceptable, or null. KMS Encrypt sends the KEK in the request body, so only TLS will do, except on loopback (a local proxy or a test fake).</summary>
    public static string? EndpointProblem(Uri endpoint)
    {
        if (!endpoint.IsAbsoluteUri)
        {
            return $"must be an absolute https:// URL, got '{endpoint}'";
        }

        if (endpoint.Scheme == Uri.UriSchemeHttps)
        {
            return null;
        }

        if (endpoint.Scheme == Uri.UriSchemeHttp && IsLoopback(endpoint))
        {
            return null;
        }

        return $"must be an https:// URL (plain http is allowed only to a loopback address), got '{endpoint}'";
    }

    private static bool IsLoopback(Uri uri) =>
        uri.IsLoopback || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));
}
