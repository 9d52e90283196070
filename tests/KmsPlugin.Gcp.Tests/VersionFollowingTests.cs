using KmsPlugin.Core.Errors;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Gcp.Tests;

/// <summary>
/// The gcp root key as an <see cref="Core.RootKeys.IVersionedRootKey"/> (the shared contract), and what only Cloud KMS
/// does: the version followed is the CryptoKey's primary, which a new version does not become by being added.
/// </summary>
public sealed class VersionFollowingTests : VersionedRootKeyContract<GcpVersionedBackend>
{
    public static TheoryData<string> NotVersions => ["", "v2", "-1", "12345678901234567890"];

    [Fact]
    public async Task ReadLatestVersion_follows_only_a_version_made_primary_and_refuses_a_disabled_primary()
    {
        var kms = Backend.Bed.Kms;
        using var followed = await Backend.OpenAsync();

        // A version added without becoming primary is not followed; one that becomes primary is.
        kms.AddVersion(makePrimary: false);
        Assert.Equal("1", await followed.ReadLatestVersionAsync(CancellationToken.None));
        var v3 = kms.AddVersion(makePrimary: true);
        Assert.Equal("3", await followed.ReadLatestVersionAsync(CancellationToken.None));

        // A disabled primary is not one to move to: the read fails (the follower keeps the current version).
        kms.SetState(v3, "DISABLED");
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => followed.ReadLatestVersionAsync(CancellationToken.None));
        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("primary version 3 is DISABLED", error.Message, StringComparison.Ordinal);
    }
}
