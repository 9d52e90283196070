namespace KmsPlugin.Storage.Audit;

/// <summary>What to scan and how.</summary>
public sealed record AuditOptions
{
    /// <summary>The apiserver's <c>--etcd-prefix</c> (default <c>/registry</c>).</summary>
    public string Prefix { get; init; } = "/registry";

    /// <summary>Resources to scan (<c>secrets</c>, or <c>group/resource</c> for a group's path); null = everything under the prefix.</summary>
    public IReadOnlyList<string>? Resources { get; init; }

    /// <summary>Keys per range read: bounds memory and the size of one etcd response.</summary>
    public int PageSize { get; init; } = 500;

    /// <summary>The plugin's root keys (from its configuration), to tell current, old and unknown key_ids apart.</summary>
    public IReadOnlyList<ConfiguredKeyId> ConfiguredKeyIds { get; init; } = [];

    /// <summary>
    /// For a key_id that is none of <see cref="ConfiguredKeyIds"/> (nor another epoch of one): given the stored value's
    /// key_id, encrypted DEK source (the plugin's ciphertext) and annotations, the name of the configured root key that
    /// recognises the value's wrap as its own — another version of a versioned key — or null. Local: no remote call.
    /// </summary>
    public Func<string, ReadOnlyMemory<byte>, IReadOnlyDictionary<string, ReadOnlyMemory<byte>>, string?>? RecognizeRootKey { get; init; }

    /// <summary>When set, every scanned value must be a readable KMS v2 value under this key_id.</summary>
    public string? RequireKeyId { get; init; }

    /// <summary>Objects opened per distinct encrypted DEK source when verifying; 0 = all.</summary>
    public int VerifySample { get; init; } = 10;

    /// <summary>Only verify KMS v2 values of this EncryptionConfiguration provider name; null = all KMS v2 values.</summary>
    public string? VerifyProvider { get; init; }

    /// <summary>At most this many problems (corrupted values, unreadable objects) are listed; all are counted.</summary>
    public int MaxProblemsListed { get; init; } = 50;

    /// <summary>The etcd key prefixes to scan, in order: one per resource, or the whole prefix.</summary>
    public IReadOnlyList<string> ScanPrefixes()
    {
        var root = NormalizedPrefix;
        return Resources is null ? [root + "/"] : [.. Resources.Select(r => root + "/" + r.Trim('/') + "/")];
    }

    /// <summary>The prefix with one leading and no trailing slash, as the apiserver joins it (<c>path.Join</c>).</summary>
    public string NormalizedPrefix => Prefix.Trim('/') is { Length: > 0 } trimmed ? "/" + trimmed : "";

    /// <summary>
    /// The resource an etcd key belongs to: the first path segment after the prefix, or the first two when the first is
    /// an API group (it contains a dot), which is how the apiserver lays out CRDs, custom resources and aggregated APIs
    /// (<c>/registry/apiregistration.k8s.io/apiservices/...</c>).
    /// </summary>
    public string ResourceOf(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var root = NormalizedPrefix + "/";
        if (Resources is not null)
        {
            foreach (var resource in Resources)
            {
                if (key.StartsWith(root + resource.Trim('/') + "/", StringComparison.Ordinal))
                {
                    return resource.Trim('/');
                }
            }
        }

        var relative = key.StartsWith(root, StringComparison.Ordinal) ? key[root.Length..] : key;
        var segments = relative.Split('/', 3);
        return segments.Length >= 3 && segments[0].Contains('.', StringComparison.Ordinal) ? segments[0] + "/" + segments[1] : segments[0];
    }
}
