namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// A root key whose backend has versions and moves its current one remotely: an Azure Key Vault key used without a
/// version, a GCP CryptoKey's primary version, a Vault/OpenBao transit key's latest version. The background probe
/// reads <see cref="ReadLatestVersionAsync"/> and, once the same new version has been seen for the configured
/// number of probes, swaps in <see cref="WithVersion"/> (issue 4: followed, never flip-flopping). Because each
/// version has its own key_id, the swap changes the key_id the apiserver sees, and <see cref="IRootKey.Recognizes"/>
/// keeps older versions' wraps unwrapping.
/// </summary>
public interface IVersionedRootKey : IRootKey
{
    /// <summary>True when configured without a pinned version, so the backend's current version is followed.</summary>
    bool FollowsLatestVersion { get; }

    /// <summary>The version this instance wraps new KEKs with (as the backend names it).</summary>
    string CurrentVersion { get; }

    /// <summary>
    /// The version the backend would use for new wraps now (one metadata call; no key material is sent). Errors are
    /// typed <see cref="Errors.KmsPluginException"/> like every other remote call.
    /// </summary>
    Task<string> ReadLatestVersionAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The same key wrapping with <paramref name="version"/>, sharing this instance's client and credentials. Either
    /// instance may be disposed first: shared resources are released when the last instance sharing them is.
    /// </summary>
    IVersionedRootKey WithVersion(string version);
}
