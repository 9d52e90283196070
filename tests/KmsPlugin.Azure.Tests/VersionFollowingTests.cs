using KmsPlugin.Core.Errors;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Azure.Tests;

/// <summary>
/// The azure root key as an <see cref="Core.RootKeys.IVersionedRootKey"/> (the shared contract), and what only Key
/// Vault does: a newest version created disabled is not one to move to.
/// </summary>
public sealed class VersionFollowingTests : VersionedRootKeyContract<AzureVersionedBackend>
{
    public static TheoryData<string> NotVersions => ["", "not/a/version", "0f3c 2a"];

    [Fact]
    public async Task ReadLatestVersion_refuses_a_newest_version_that_is_disabled()
    {
        var vault = Backend.Bed.Vault;
        using var followed = await Backend.OpenAsync();
        var second = Backend.Rotate();
        Assert.Equal(second, await followed.ReadLatestVersionAsync(CancellationToken.None));

        // The read fails (the follower keeps the current version) rather than report a version that cannot wrap.
        var third = Backend.Rotate();
        vault.SetEnabled(AzureTestBed.KeyName, third, false);
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => followed.ReadLatestVersionAsync(CancellationToken.None));
        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains(third, error.Message, StringComparison.Ordinal);
        Assert.Contains("disabled", error.Message, StringComparison.Ordinal);
    }
}
