using System.Security.Cryptography;
using System.Text;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Vault.Tests;

/// <summary>
/// The vault root key as an <see cref="IVersionedRootKey"/>: reading the latest Transit version after a remote rotation
/// (<c>vault write -f transit/keys/NAME/rotate</c>), moving to it with WithVersion, and recognising the blobs every
/// other version of the key wrapped under their own key_ids.
/// </summary>
public sealed class VaultVersionFollowingTests : IAsyncLifetime, IDisposable
{
    private readonly TempDirectory _dir = new();
    private FakeVault _vault = null!;
    private FakeTransitKey _key = null!;

    public async Task InitializeAsync()
    {
        _vault = await FakeVault.StartAsync();
        _key = _vault.CreateKey();
    }

    public async Task DisposeAsync() => await _vault.DisposeAsync();

    public void Dispose() => _dir.Dispose();

    private static string Text(byte[] blob) => Encoding.ASCII.GetString(blob, 1, blob.Length - 1);

    [Fact]
    public async Task After_a_remote_rotation_WithVersion_wraps_with_the_new_version_under_a_new_key_id_and_unwraps_the_old_versions_blobs()
    {
        var options = VaultTestOptions.Kubernetes(_vault, _dir);
        using var v1 = await VaultTransitRootKey.OpenAsync(options, CancellationToken.None);
        var aad = VaultTestOptions.Aad();
        var oldKek = RandomNumberGenerator.GetBytes(32);
        var oldBlob = await v1.WrapAsync(oldKek, aad, CancellationToken.None);

        _key.Rotate();
        var latest = await v1.ReadLatestVersionAsync(CancellationToken.None);
        using var v2 = (VaultTransitRootKey)v1.WithVersion(latest);

        Assert.Equal("2", latest);
        Assert.Equal("1", v1.CurrentVersion);
        Assert.Equal("2", v2.CurrentVersion);
        Assert.True(v2.FollowsLatestVersion);
        Assert.NotEqual(v1.KeyId, v2.KeyId);
        Assert.Equal(KeyIds.Derive("vault", VaultTransitRootKey.Identity(options, 2)), v2.KeyId);

        var newKek = RandomNumberGenerator.GetBytes(32);
        var newBlob = await v2.WrapAsync(newKek, aad, CancellationToken.None);
        Assert.StartsWith("vault:v2:", Text(newBlob), StringComparison.Ordinal);
        Assert.Equal(2, (int)_vault.EncryptRequests.Last()["key_version"]!);

        // Older blobs under the key_id they were wrapped under; never under another version's key_id.
        Assert.True(v2.Recognizes(v1.KeyId, oldBlob));
        Assert.True(v2.Recognizes(v2.KeyId, newBlob));
        Assert.False(v2.Recognizes(v2.KeyId, oldBlob));
        Assert.False(v2.Recognizes(v1.KeyId, newBlob));
        using var oldPlain = await v2.UnwrapAsync(oldBlob, aad, CancellationToken.None);
        Assert.Equal(oldKek, oldPlain.Span.ToArray());

        // A node still on version 1 reads what a node already on version 2 wrote.
        Assert.True(v1.Recognizes(v2.KeyId, newBlob));
        using var newPlain = await v1.UnwrapAsync(newBlob, aad, CancellationToken.None);
        Assert.Equal(newKek, newPlain.Span.ToArray());
    }

    [Fact]
    public async Task A_blob_of_another_Transit_key_is_not_recognised_under_that_keys_key_id()
    {
        var options = VaultTestOptions.Kubernetes(_vault, _dir);
        _vault.CreateKey("other");
        using var ours = await VaultTransitRootKey.OpenAsync(options, CancellationToken.None);
        using var other = await VaultTransitRootKey.OpenAsync(options with { KeyName = "other" }, CancellationToken.None);
        var otherBlob = await other.WrapAsync(RandomNumberGenerator.GetBytes(32), VaultTestOptions.Aad(), CancellationToken.None);

        Assert.StartsWith("vault:v1:", Text(otherBlob), StringComparison.Ordinal);
        Assert.False(ours.Recognizes(other.KeyId, otherBlob));
        Assert.False(((IRootKey)ours).Recognizes(other.KeyId, otherBlob));
        Assert.True(other.Recognizes(other.KeyId, otherBlob));
    }

    [Fact]
    public async Task A_blob_moved_under_another_versions_key_id_by_editing_its_version_does_not_unwrap()
    {
        var options = VaultTestOptions.Kubernetes(_vault, _dir);
        _key.Rotate();
        using var v2 = await VaultTransitRootKey.OpenAsync(options, CancellationToken.None);
        using var v1 = (VaultTransitRootKey)v2.WithVersion("1");
        var blob = await v1.WrapAsync(RandomNumberGenerator.GetBytes(32), VaultTestOptions.Aad(), CancellationToken.None);

        // vault:v1:… → vault:v2:…: now "recognised" under version 2's key_id, but Vault opens it with version 2's key.
        var edited = blob.ToArray();
        edited[1 + "vault:v".Length] = (byte)'2';
        Assert.True(v2.Recognizes(v2.KeyId, edited));

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => v2.UnwrapAsync(edited, VaultTestOptions.Aad(), CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
    }

    [Fact]
    public async Task ReadLatestVersion_follows_each_remote_rotation_and_a_pinned_key_does_not_follow()
    {
        var options = VaultTestOptions.Kubernetes(_vault, _dir);
        using var followed = await VaultTransitRootKey.OpenAsync(options, CancellationToken.None);
        using var pinned = await VaultTransitRootKey.OpenAsync(options with { KeyVersion = 1 }, CancellationToken.None);

        Assert.Equal("1", await followed.ReadLatestVersionAsync(CancellationToken.None));
        _key.Rotate();
        _key.Rotate();
        Assert.Equal("3", await followed.ReadLatestVersionAsync(CancellationToken.None));
        Assert.Equal("3", await pinned.ReadLatestVersionAsync(CancellationToken.None));

        Assert.True(followed.FollowsLatestVersion);
        Assert.False(pinned.FollowsLatestVersion);
        Assert.Equal("1", pinned.CurrentVersion);
        Assert.Equal(2 + 3, _vault.Calls("keys")); // one read per open, one per ReadLatestVersionAsync
    }

    [Fact]
    public async Task ReadLatestVersion_reports_a_denied_policy_as_RootKeyDenied()
    {
        using var key = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None);
        _vault.PolicyDenies = true;

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => key.ReadLatestVersionAsync(CancellationToken.None));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("reading the transit key", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("v2")]
    [InlineData(" 2")]
    [InlineData("99999999999")]
    public async Task WithVersion_refuses_what_is_not_a_version_number(string version)
    {
        using var key = await VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None);

        Assert.Throws<ArgumentException>(() => key.WithVersion(version));
    }

    [Fact]
    public async Task Instances_share_one_client_and_token_and_either_can_be_disposed_first()
    {
        var options = VaultTestOptions.Kubernetes(_vault, _dir);
        var v1 = await VaultTransitRootKey.OpenAsync(options, CancellationToken.None);
        var aad = VaultTestOptions.Aad();
        var oldBlob = await v1.WrapAsync(RandomNumberGenerator.GetBytes(32), aad, CancellationToken.None);
        _key.Rotate();
        var v2 = v1.WithVersion("2");

        v1.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => v1.WrapAsync(RandomNumberGenerator.GetBytes(32), aad, CancellationToken.None));
        Assert.Throws<ObjectDisposedException>(() => v1.WithVersion("2"));

        var kek = RandomNumberGenerator.GetBytes(32);
        using (var plain = await v2.UnwrapAsync(await v2.WrapAsync(kek, aad, CancellationToken.None), aad, CancellationToken.None))
        {
            Assert.Equal(kek, plain.Span.ToArray());
        }

        using (await v2.UnwrapAsync(oldBlob, aad, CancellationToken.None))
        {
        }

        Assert.Equal("2", await v2.ReadLatestVersionAsync(CancellationToken.None));
        Assert.Single(_vault.LoginCredentialsSeen); // one login, shared by both versions

        v2.Dispose();
        v2.Dispose(); // idempotent: the shared client is released once
        Assert.Throws<ObjectDisposedException>(() => v2.WithVersion("3"));
    }
}
