namespace KmsPlugin.Storage.Audit;

/// <summary>What the plugin's configuration says about a key_id found in etcd.</summary>
public enum KeyIdRole
{
    /// <summary>No configuration was given, so nothing is known.</summary>
    NotChecked,

    /// <summary>The primary root key's key_id: what the plugin reports now, what new writes use.</summary>
    Current,

    /// <summary>
    /// Another configured (decrypt-only) root key, another epoch of one, or an older version of a configured versioned
    /// key (Azure, GCP, Vault): readable, but should be migrated before that key or version goes.
    /// </summary>
    Old,

    /// <summary>Not in the configuration: the plugin cannot decrypt it (another provider, or a removed root key).</summary>
    Unknown,
}

/// <summary>A root key from the plugin's configuration and the key_id it gives.</summary>
public sealed record ConfiguredKeyId(string KeyId, string RootKeyName, bool Primary);
