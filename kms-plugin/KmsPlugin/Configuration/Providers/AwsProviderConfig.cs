using KmsPlugin.Aws;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Configuration.Providers;

/// <summary>
/// <c>provider: aws</c> — a symmetric AWS KMS key (docs/providers/aws.md). The settings are the provider's own
/// options, validated here so a bad value fails at load with its field name; the entry's name is filled in at open.
/// </summary>
public static class AwsProviderConfig
{
    public static RootKeyProvider Provider { get; } = new("aws", Parse,
        (config, _) => AwsKmsRootKey.Open(config.SettingsAs<AwsKmsRootKeyOptions>() with { Name = config.Name }));

    private static readonly string[] Fields =
        ["keyId", "region", "endpoint", "fips", "encryptionContext", "credentials", .. RemoteProviderSettings.Fields.Where(f => f != "caFile")];

    private static AwsKmsRootKeyOptions Parse(ConfigNode aws, string baseDirectory)
    {
        // caFile is not offered: the AWS SDK owns its HttpClient, and KMS endpoints (VPC ones included) present
        // publicly trusted certificates.
        aws.AllowOnly(Fields);
        var networkTimeout = RemoteProviderSettings.NetworkTimeout(aws);
        var retry = RemoteProviderSettings.Retry(aws);
        var options = new AwsKmsRootKeyOptions
        {
            Name = "(config)",
            KeyId = aws.Text("keyId") ?? throw new ConfigException(aws.Field("keyId"),
                "is required: the key ARN (recommended), alias/NAME, an alias ARN or a key id"),
            Region = aws.Text("region"),
            Endpoint = Url(aws, "endpoint"),
            UseFipsEndpoint = aws.Bool("fips", false),
            EncryptionContext = ParseContext(aws),
            Credentials = ParseCredentials(aws.Mapping("credentials"), baseDirectory),
            RequestTimeout = networkTimeout,
            OpenTimeout = RemoteProviderSettings.OpenBudget(networkTimeout, retry),
            Retry = retry,
        };
        try
        {
            options.Validate();
        }
        catch (KmsPluginException e) when (e.Data[AwsKmsRootKeyOptions.OptionDataKey] is string option)
        {
            throw new ConfigException(aws.Field(option), e.Data[AwsKmsRootKeyOptions.ProblemDataKey] as string ?? e.Message);
        }

        return options;
    }

    /// <summary>
    /// <c>encryptionContext</c> as a mapping (<c>cluster: prod-eu1</c>, how AWS writes an encryption context) or as a list
    /// of <c>{key, value}</c> pairs (<c>- {key: cluster, value: prod-eu1}</c>, for names YAML would otherwise reinterpret).
    /// </summary>
    private static Dictionary<string, string> ParseContext(ConfigNode aws)
    {
        var context = new Dictionary<string, string>(StringComparer.Ordinal);
        if (aws.IsMapping("encryptionContext"))
        {
            foreach (var (key, value) in aws.StringMap("encryptionContext")!)
            {
                context.Add(key, value); // unique: YAML refuses a duplicate key in a mapping
            }

            return context;
        }

        List<ConfigNode>? pairs;
        try
        {
            pairs = aws.Sequence("encryptionContext");
        }
        catch (ConfigException e) when (e.Field == aws.Field("encryptionContext"))
        {
            throw new ConfigException(e.Field, "must be a mapping of names to values (cluster: prod-eu1) or a list of {key, value}");
        }

        foreach (var pair in pairs ?? [])
        {
            pair.AllowOnly("key", "value");
            var key = pair.Text("key") ?? throw new ConfigException(pair.Field("key"), "is required");
            var value = pair.Text("value") ?? throw new ConfigException(pair.Field("value"), "is required");
            if (!context.TryAdd(key, value))
            {
                throw new ConfigException(pair.Field("key"), $"\"{key}\" appears more than once");
            }
        }

        return context;
    }

    private static AwsCredentialOptions ParseCredentials(ConfigNode? credentials, string baseDirectory)
    {
        if (credentials is null)
        {
            return new AwsCredentialOptions();
        }

        credentials.AllowOnly("source", "roleArn", "tokenFile", "sessionName", "stsEndpoint", "duration");
        var source = credentials.Text("source") is { } text
            ? ConfigLoader.OneOf(credentials.Field("source"), text, "default", "webIdentity")
            : "default";
        return new AwsCredentialOptions
        {
            Source = source == "webIdentity" ? AwsCredentialSource.WebIdentity : AwsCredentialSource.Default,
            RoleArn = credentials.Text("roleArn"),
            TokenFile = RemoteProviderSettings.FilePath(credentials, "tokenFile", baseDirectory),
            SessionName = credentials.Text("sessionName") ?? "k8s-kms-plugin",
            StsEndpoint = Url(credentials, "stsEndpoint"),
            Duration = credentials.Duration("duration", TimeSpan.FromHours(1), TimeSpan.FromMinutes(15), TimeSpan.FromHours(12)),
        };
    }

    private static Uri? Url(ConfigNode node, string key)
    {
        var text = node.Text(key);
        if (text is null)
        {
            return null;
        }

        // https, or http to loopback (a local proxy); AwsKmsRootKeyOptions.Validate says which.
        return Uri.TryCreate(text, UriKind.Absolute, out var uri)
            ? uri
            : throw new ConfigException(node.Field(key), $"must be an absolute https:// URL, got \"{text}\"");
    }
}
