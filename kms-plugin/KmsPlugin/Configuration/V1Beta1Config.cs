namespace KmsPlugin.Configuration;

/// <summary>
/// <c>kmsV1beta1</c>: whether the deprecated KMS v1 service (<c>/v1beta1.KeyManagementService</c>) is served beside
/// KMS v2 on the same socket, for clusters migrating from KMS v1 (docs/apiserver-compatibility.md). Off by default;
/// read at start only (changing it needs a restart).
/// </summary>
public sealed record V1Beta1Config
{
    public bool Enabled { get; init; }

    /// <summary>Parses the <c>kmsV1beta1</c> mapping; absent (or empty) means disabled.</summary>
    public static V1Beta1Config Parse(ConfigNode? node)
    {
        if (node is null)
        {
            return new V1Beta1Config();
        }

        node.AllowOnly("enabled");
        return new V1Beta1Config { Enabled = node.Bool("enabled", false) };
    }
}
