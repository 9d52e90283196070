using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Gcp.Tests.Fakes;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Gcp.Tests;

/// <summary>
/// The gcp root key as an <see cref="IVersionedRootKey"/>: reading the CryptoKey's primary version after it moves
/// (a rotation), moving to it with WithVersion, and recognising the blobs every other version wrapped under their own
/// key_ids.
/// </summary>
public sealed class VersionFollowingTests
{
    private static readonly byte[] Aad = "k8s-kms-plugin/test-aad"u8.ToArray();

    private static string KeyIdOf(string version, string cryptoKey = FakeCloudKms.CryptoKey) =>
        KeyIds.Derive("gcp", $"{cryptoKey}/cryptoKeyVersions/{version}");

    [Fact]
    public async Task After_a_remote_rotation_WithVersion_wraps_with_the_new_version_under_a_new_key_id_and_unwraps_the_old_versions_blobs()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        using var v1 = await bed.OpenAsync();
        var oldKek = RandomNumberGenerator.GetBytes(32);
        var oldBlob = await v1.WrapAsync(oldKek, Aad, CancellationToken.None);

        bed.Kms.AddVersion(makePrimary: true); // rotation: version 2 becomes primary
        var latest = await v1.ReadLatestVersionAsync(CancellationToken.None);
        using var v2 = (GcpKmsRootKey)v1.WithVersion(latest);

        Assert.Equal("2", latest);
        Assert.Equal("1", v1.CurrentVersion);
        Assert.Equal("2", v2.CurrentVersion);
        Assert.True(v2.FollowsLatestVersion);
        Assert.NotEqual(v1.KeyId, v2.KeyId);
        Assert.Equal(KeyIdOf("2"), v2.KeyId);

        var newKek = RandomNumberGenerator.GetBytes(32);
        var encryptsBefore = bed.Kms.Requests("encrypt");
        var newBlob = await v2.WrapAsync(newKek, Aad, CancellationToken.None);
        Assert.Equal((byte)'2', newBlob[2]);
        Assert.Equal(1, bed.Kms.Requests("encrypt") - encryptsBefore);

        Assert.True(v2.Recognizes(v1.KeyId, oldBlob));
        Assert.True(v2.Recognizes(v2.KeyId, newBlob));
        Assert.False(v2.Recognizes(v2.KeyId, oldBlob));
        Assert.False(v2.Recognizes(v1.KeyId, newBlob));
        using var oldPlain = await v2.UnwrapAsync(oldBlob, Aad, CancellationToken.None);
        Assert.Equal(oldKek, oldPlain.Span.ToArray());

        // A node still on version 1 reads what a node already on version 2 wrote.
        Assert.True(v1.Recognizes(v2.KeyId, newBlob));
        using var newPlain = await v1.UnwrapAsync(newBlob, Aad, CancellationToken.None);
        Assert.Equal(newKek, newPlain.Span.ToArray());
    }

    [Fact]
    public async Task A_blob_of_another_CryptoKey_is_not_recognised_under_that_keys_key_id()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        using var key = await bed.OpenAsync();
        var blob = await key.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None);

        // Another key's version-1 wrap carries the same header: only the key_id tells them apart.
        var otherKey = FakeCloudKms.CryptoKey.Replace("/cryptoKeys/kek", "/cryptoKeys/other", StringComparison.Ordinal);
        Assert.False(key.Recognizes(KeyIdOf("1", otherKey), blob));
        Assert.True(key.Recognizes(KeyIdOf("1"), blob));
    }

    [Fact]
    public async Task ReadLatestVersion_follows_the_primary_refuses_a_disabled_one_and_a_pinned_key_does_not_follow()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        using var followed = await bed.OpenAsync();
        using var pinned = await bed.OpenAsync(bed.Options(version: "1"));

        Assert.True(followed.FollowsLatestVersion);
        Assert.False(pinned.FollowsLatestVersion);
        Assert.Equal("1", await followed.ReadLatestVersionAsync(CancellationToken.None));

        // A version added without becoming primary is not followed; one that becomes primary is.
        bed.Kms.AddVersion(makePrimary: false);
        Assert.Equal("1", await followed.ReadLatestVersionAsync(CancellationToken.None));
        var v3 = bed.Kms.AddVersion(makePrimary: true);
        Assert.Equal("3", await followed.ReadLatestVersionAsync(CancellationToken.None));

        bed.Kms.SetState(v3, "DISABLED");
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => followed.ReadLatestVersionAsync(CancellationToken.None));
        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("primary version 3 is DISABLED", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadLatestVersion_reports_a_denied_key_read_as_RootKeyDenied()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        using var key = await bed.OpenAsync();
        bed.Kms.Faults.Add(new Fault { Operation = "get", Status = 403, Code = "PERMISSION_DENIED" });

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => key.ReadLatestVersionAsync(CancellationToken.None));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("PERMISSION_DENIED", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("v2")]
    [InlineData("-1")]
    [InlineData("12345678901234567890")]
    public async Task WithVersion_refuses_what_is_not_a_version_number(string version)
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        using var key = await bed.OpenAsync();

        Assert.Throws<ArgumentException>(() => key.WithVersion(version));
    }

    [Fact]
    public async Task Instances_share_one_client_and_token_and_either_can_be_disposed_first()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        var v1 = await bed.OpenAsync();
        var oldBlob = await v1.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None);
        bed.Kms.AddVersion(makePrimary: true);
        var v2 = v1.WithVersion("2");

        v1.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => v1.WrapAsync(RandomNumberGenerator.GetBytes(32), Aad, CancellationToken.None));
        Assert.Throws<ObjectDisposedException>(() => v1.WithVersion("2"));

        var kek = RandomNumberGenerator.GetBytes(32);
        using (var plain = await v2.UnwrapAsync(await v2.WrapAsync(kek, Aad, CancellationToken.None), Aad, CancellationToken.None))
        {
            Assert.Equal(kek, plain.Span.ToArray());
        }

        using (await v2.UnwrapAsync(oldBlob, Aad, CancellationToken.None))
        {
        }

        Assert.Equal("2", await v2.ReadLatestVersionAsync(CancellationToken.None));
        Assert.Single(bed.Kms.TokenRequests); // one token exchange, shared by both versions

        v2.Dispose();
        v2.Dispose();
        Assert.Throws<ObjectDisposedException>(() => v2.WithVersion("3"));
    }
}
