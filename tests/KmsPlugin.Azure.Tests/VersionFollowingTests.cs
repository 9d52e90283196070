using System.Security.Cryptography;
using System.Text;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Azure.Tests;

/// <summary>
/// The azure root key as an <see cref="IVersionedRootKey"/>: reading the key's newest version after the vault rotates
/// it, moving to it with WithVersion, and recognising the blobs every other version wrapped under their own key_ids.
/// </summary>
public sealed class VersionFollowingTests
{
    private static readonly byte[] Aad = "k8s-kms-plugin/test-aad"u8.ToArray();

    private static string KeyIdOf(AzureTestBed bed, string version, string keyName = AzureTestBed.KeyName) =>
        KeyIds.Derive("azure", $"{bed.Vault.VaultUrl}/keys/{keyName}/{version}");

    [Fact]
    public async Task After_a_remote_rotation_WithVersion_wraps_with_the_new_version_under_a_new_key_id_and_unwraps_the_old_versions_blobs()
    {
        await using var bed = await AzureTestBed.StartAsync();
        var first = bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        using var v1 = await bed.OpenAsync();
        var oldKek = RandomNumberGenerator.GetBytes(32);
        var oldBlob = await v1.WrapAsync(oldKek, Aad, CancellationToken.None);

        var second = bed.Vault.AddRsaVersion(AzureTestBed.KeyName); // the vault rotates the key
        var latest = await v1.ReadLatestVersionAsync(CancellationToken.None);
        using var v2 = (AzureKeyVaultRootKey)v1.WithVersion(latest);

        Assert.Equal(second, latest);
        Assert.Equal(first, v1.CurrentVersion);
        Assert.Equal(second, v2.CurrentVersion);
        Assert.True(v2.FollowsLatestVersion);
        Assert.NotEqual(v1.KeyId, v2.KeyId);
        Assert.Equal(KeyIdOf(bed, second), v2.KeyId);

        var newKek = RandomNumberGenerator.GetBytes(32);
        var newBlob = await v2.WrapAsync(newKek, Aad, CancellationToken.None);
        Assert.Equal(second, Encoding.ASCII.GetString(newBlob, 3, second.Length));

        Assert.True(v2.Recognizes(v1.KeyId, oldBlob));
        Assert.True(v2.Recognizes(v2.KeyId, newBlob));
        Assert.False(v2.Recognizes(v2.KeyId, oldBlob));
        Assert.False(v2.Recognizes(v1.KeyId, newBlob));
        using var oldPlain = await v2.UnwrapAsync(oldBlob, Aad, CancellationToken.None);
        Assert.Equal(oldKek, oldPlain.Span.ToArray());

        // A node still on the first version reads what a node already on the second wrote.
        Assert.True(v1.Recognizes(v2.KeyId, newBlob));
        using var newPlain = await v1.UnwrapAsync(newBlob, Aad, CancellationToken.None);
        Assert.Equal(newKek, newPlain.Span.ToArray());
    }

    [Fact]
    public async Task A_blob_of_another_key_is_not_recognised()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        bed.Vault.AddRsaVersion("other-kek");
        using var ours = await bed.OpenAsync();
        using var other = await bed.OpenAsync(bed.Options(keyName: "other-kek", name: "other"));
        var otherBlob = await other.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None);

        Assert.False(ours.Recognizes(other.KeyId, otherBlob));
        Assert.True(other.Recognizes(other.KeyId, otherBlob));
        Assert.Equal(KeyIdOf(bed, other.KeyVersion, "other-kek"), other.KeyId);
    }

    [Fact]
    public async Task ReadLatestVersion_follows_the_newest_version_refuses_a_disabled_one_and_a_pinned_key_does_not_follow()
    {
        await using var bed = await AzureTestBed.StartAsync();
        var v1 = bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        using var followed = await bed.OpenAsync();
        using var pinned = await bed.OpenAsync(bed.Options(version: v1));

        Assert.True(followed.FollowsLatestVersion);
        Assert.False(pinned.FollowsLatestVersion);
        Assert.Equal(v1, await followed.ReadLatestVersionAsync(CancellationToken.None));
        var v2 = bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        Assert.Equal(v2, await followed.ReadLatestVersionAsync(CancellationToken.None));
        Assert.Equal(v1, pinned.CurrentVersion);

        // A newest version created disabled is not one to move to: the read fails (the follower keeps the current one).
        var v3 = bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        bed.Vault.SetEnabled(AzureTestBed.KeyName, v3, false);
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => followed.ReadLatestVersionAsync(CancellationToken.None));
        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains(v3, error.Message, StringComparison.Ordinal);
        Assert.Contains("disabled", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadLatestVersion_reports_a_denied_key_read_as_RootKeyDenied()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        using var key = await bed.OpenAsync();
        bed.Vault.Faults.Add(new Fault { Operation = "get", Status = 403, Code = "Forbidden" });

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => key.ReadLatestVersionAsync(CancellationToken.None));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("HTTP 403", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not/a/version")]
    [InlineData("0f3c 2a")]
    public async Task WithVersion_refuses_what_is_not_a_key_version(string version)
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        using var key = await bed.OpenAsync();

        Assert.Throws<ArgumentException>(() => key.WithVersion(version));
    }

    [Fact]
    public async Task Instances_share_one_client_and_token_and_either_can_be_disposed_first()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        var v1 = await bed.OpenAsync();
        var oldBlob = await v1.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None);
        var second = bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        var v2 = v1.WithVersion(second);

        v1.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => v1.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None));
        Assert.Throws<ObjectDisposedException>(() => v1.WithVersion(second));

        var kek = RandomNumberGenerator.GetBytes(32);
        using (var plain = await v2.UnwrapAsync(await v2.WrapAsync(kek, Aad, CancellationToken.None), Aad, CancellationToken.None))
        {
            Assert.Equal(kek, plain.Span.ToArray());
        }

        using (await v2.UnwrapAsync(oldBlob, Aad, CancellationToken.None))
        {
        }

        Assert.Equal(second, await v2.ReadLatestVersionAsync(CancellationToken.None));
        Assert.Single(bed.Vault.TokenRequests); // one Entra ID token, shared by both versions

        v2.Dispose();
        v2.Dispose();
        Assert.Throws<ObjectDisposedException>(() => v2.WithVersion(second));
    }
}
