using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Configuration.Providers;

/// <summary>
/// Settings every remote (network) root-key provider shares, parsed the same way for each: https URLs, the extra
/// CA bundle, the per-attempt network timeout and the shared retry policy's bounds.
/// </summary>
public static class RemoteProviderSettings
{
    public static readonly string[] Fields = ["caFile", "networkTimeout", "maxAttempts", "retryBaseDelay", "retryMaxDelay"];

    /// <summary>An absolute https:// URL: tokens and key material never travel over plain http.</summary>
    public static Uri? HttpsUrl(ConfigNode node, string key)
    {
        ArgumentNullException.ThrowIfNull(node);
        var text = node.Text(key);
        if (text is null)
        {
            return null;
        }

        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps)
        {
            throw new ConfigException(node.Field(key), $"must be an https:// URL, got \"{text}\"");
        }

        return uri;
    }

    /// <summary>A file path resolved against the config file's directory.</summary>
    public static string? FilePath(ConfigNode node, string key, string baseDirectory)
    {
        ArgumentNullException.ThrowIfNull(node);
        return node.Text(key) is { } path ? Path.GetFullPath(path, baseDirectory) : null;
    }

    public static TimeSpan NetworkTimeout(ConfigNode node) =>
        node.Duration("networkTimeout", TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(50), TimeSpan.FromMinutes(1));

    public static RetryPolicy Retry(ConfigNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var policy = new RetryPolicy
        {
            MaxAttempts = (int)node.WholeNumber("maxAttempts", RetryPolicy.Default.MaxAttempts, 1, 10),
            BaseDelay = node.Duration("retryBaseDelay", RetryPolicy.Default.BaseDelay, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(10)),
            MaxDelay = node.Duration("retryMaxDelay", RetryPolicy.Default.MaxDelay, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(30)),
        };
        return policy.MaxDelay < policy.BaseDelay
            ? throw new ConfigException(node.Field("retryMaxDelay"), "must not be shorter than retryBaseDelay")
            : policy;
    }

    /// <summary>How long opening a remote key may take: every attempt's token request and call, plus the waits between.</summary>
    public static TimeSpan OpenBudget(TimeSpan networkTimeout, RetryPolicy retry)
    {
        ArgumentNullException.ThrowIfNull(retry);
        return (networkTimeout * 2 + retry.MaxDelay) * retry.MaxAttempts;
    }
}
