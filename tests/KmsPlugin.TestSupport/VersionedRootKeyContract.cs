using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using Xunit;

namespace KmsPlugin.TestSupport;

/// <summary>
/// What every <see cref="IVersionedRootKey"/> promises, checked against a provider's wire fake: after a remote rotation
/// <see cref="IVersionedRootKey.ReadLatestVersionAsync"/> reads the new version and <see cref="IVersionedRootKey.WithVersion"/>
/// wraps with it under a new key_id; <see cref="IRootKey.Recognizes"/> matches each wrap to the key_id of the version
/// it records (so older versions' wraps keep unwrapping, issue 4) and never to another key's key_id; a pinned key does
/// not follow; instances made by WithVersion share one client and credential and can be disposed in any order.
/// A provider test class derives from this with its <typeparamref name="TBackend"/> and declares
/// <c>public static TheoryData&lt;string&gt; NotVersions</c>: strings its WithVersion must refuse.
/// </summary>
public abstract class VersionedRootKeyContract<TBackend> : VersionedKeyBackendTest<TBackend>
    where TBackend : IVersionedKeyBackend, new()
{
    [Fact]
    public async Task After_a_remote_rotation_WithVersion_wraps_with_the_new_version_under_a_new_key_id_and_unwraps_the_old_versions_blobs()
    {
        using var v1 = await Backend.OpenAsync();
        var oldKek = NewKek();
        var oldBlob = await v1.WrapAsync(oldKek, Aad, CancellationToken.None);
        Assert.Equal(Backend.KeyIdOf(FirstVersion), v1.KeyId);
        Assert.Equal(FirstVersion, Backend.VersionRecordedIn(oldBlob));

        var second = Backend.Rotate();
        var latest = await v1.ReadLatestVersionAsync(CancellationToken.None);
        using var v2 = v1.WithVersion(latest);

        Assert.Equal(second, latest);
        Assert.Equal(FirstVersion, v1.CurrentVersion);
        Assert.Equal(second, v2.CurrentVersion);
        Assert.IsType(v1.GetType(), v2);
        Assert.Equal(Backend.Provider, v2.Provider);
        Assert.True(v2.FollowsLatestVersion);
        Assert.NotEqual(v1.KeyId, v2.KeyId);
        Assert.Equal(Backend.KeyIdOf(second), v2.KeyId);

        var newKek = NewKek();
        var wrapsBefore = Backend.WrapsWith(second);
        var newBlob = await v2.WrapAsync(newKek, Aad, CancellationToken.None);
        Assert.Equal(second, Backend.VersionRecordedIn(newBlob));
        Assert.Equal(wrapsBefore + 1, Backend.WrapsWith(second));

        // Older blobs under the key_id they were wrapped under; never under another version's key_id.
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
    public async Task A_blob_of_another_key_is_not_recognised_under_that_keys_key_id()
    {
        using var ours = await Backend.OpenAsync();
        using var other = await Backend.OpenOtherKeyAsync();
        var ourBlob = await ours.WrapAsync(NewKek(), Aad, CancellationToken.None);
        var otherBlob = await other.WrapAsync(NewKek(), Aad, CancellationToken.None);

        Assert.Equal(Backend.OtherKeyIdOf(other.CurrentVersion), other.KeyId);
        Assert.NotEqual(ours.KeyId, other.KeyId);
        Assert.Equal(other.CurrentVersion, Backend.VersionRecordedIn(otherBlob));
        Assert.True(other.Recognizes(other.KeyId, otherBlob));
        Assert.False(ours.Recognizes(other.KeyId, otherBlob));
        Assert.False(((IRootKey)ours).Recognizes(other.KeyId, otherBlob));

        // Another key's wrap at a version of the same name carries the same header: only the key_id tells them apart.
        Assert.True(ours.Recognizes(ours.KeyId, ourBlob));
        Assert.False(ours.Recognizes(Backend.OtherKeyIdOf(ours.CurrentVersion), ourBlob));
        Assert.False(other.Recognizes(ours.KeyId, ourBlob));
    }

    [Fact]
    public async Task ReadLatestVersion_follows_each_remote_rotation_and_a_pinned_key_does_not_follow()
    {
        var readsBefore = Backend.KeyReads();
        using var followed = await Backend.OpenAsync();
        using var pinned = await Backend.OpenAsync(pinnedVersion: FirstVersion);
        Assert.Equal(readsBefore + 2, Backend.KeyReads()); // one read per open

        Assert.True(followed.FollowsLatestVersion);
        Assert.False(pinned.FollowsLatestVersion);
        Assert.Equal(FirstVersion, pinned.CurrentVersion);
        Assert.Equal(Backend.KeyIdOf(FirstVersion), pinned.KeyId);
        Assert.Equal(FirstVersion, await followed.ReadLatestVersionAsync(CancellationToken.None));

        Backend.Rotate();
        var third = Backend.Rotate();
        Assert.Equal(third, await followed.ReadLatestVersionAsync(CancellationToken.None));
        Assert.Equal(third, await pinned.ReadLatestVersionAsync(CancellationToken.None)); // reported, not adopted

        Assert.Equal(FirstVersion, followed.CurrentVersion); // reading moves nothing: WithVersion does
        Assert.Equal(FirstVersion, pinned.CurrentVersion);
        Assert.Equal(readsBefore + 2 + 3, Backend.KeyReads()); // one read per ReadLatestVersionAsync
    }

    [Fact]
    public async Task ReadLatestVersion_reports_a_denied_key_read_as_RootKeyDenied()
    {
        using var key = await Backend.OpenAsync();
        Backend.DenyKeyReads();

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => key.ReadLatestVersionAsync(CancellationToken.None));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains(Backend.DeniedKeyReadMessage, error.Message, StringComparison.Ordinal);
    }

    // The data is the deriving class's static NotVersions (xunit looks the member up on the test class).
    [Theory]
    [MemberData("NotVersions")]
    public async Task WithVersion_refuses_what_is_not_a_version_of_the_key(string version)
    {
        using var key = await Backend.OpenAsync();

        Assert.Throws<ArgumentException>(() => key.WithVersion(version));
        Assert.Equal(FirstVersion, key.CurrentVersion);
    }

    [Fact]
    public async Task Instances_share_one_client_and_token_and_either_can_be_disposed_first()
    {
        var v1 = await Backend.OpenAsync();
        var oldBlob = await v1.WrapAsync(NewKek(), Aad, CancellationToken.None);
        var second = Backend.Rotate();
        var v2 = v1.WithVersion(second);

        v1.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => v1.WrapAsync(NewKek(), Aad, CancellationToken.None));
        Assert.Throws<ObjectDisposedException>(() => v1.WithVersion(second));

        var kek = NewKek();
        using (var plain = await v2.UnwrapAsync(await v2.WrapAsync(kek, Aad, CancellationToken.None), Aad, CancellationToken.None))
        {
            Assert.Equal(kek, plain.Span.ToArray());
        }

        using (await v2.UnwrapAsync(oldBlob, Aad, CancellationToken.None))
        {
        }

        Assert.Equal(second, await v2.ReadLatestVersionAsync(CancellationToken.None));
        Assert.Equal(1, Backend.CredentialsIssued()); // one login or token, shared by both versions

        v2.Dispose();
        v2.Dispose(); // idempotent: the shared client is released once
        Assert.Throws<ObjectDisposedException>(() => v2.WithVersion(second));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => v2.ReadLatestVersionAsync(CancellationToken.None));
    }
}
