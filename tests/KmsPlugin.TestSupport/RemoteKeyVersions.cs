namespace KmsPlugin.TestSupport;

/// <summary>
/// How a provider's wire fake moves its key's current version, for <see cref="RemoteVersionFollowingScenario"/>: each
/// provider test says it in its own backend's terms (a Transit rotate, a new Key Vault key version, a new Cloud KMS
/// primary version).
/// </summary>
public sealed record RemoteKeyVersions
{
    /// <summary>The <c>provider</c> label of the root key in the plugin's metrics (<c>vault</c>, <c>azure</c>, <c>gcp</c>).</summary>
    public required string Provider { get; init; }

    /// <summary>The backend makes a new version current, as its own rotate operation does.</summary>
    public required Action Rotate { get; init; }

    /// <summary>The backend reports the version that was current before <see cref="Rotate"/> as current again.</summary>
    public required Action RollBack { get; init; }

    /// <summary>Wrap (encrypt) requests the backend has received for the version <see cref="Rotate"/> made (0 before it).</summary>
    public required Func<int> WrapsWithNewVersion { get; init; }
}
