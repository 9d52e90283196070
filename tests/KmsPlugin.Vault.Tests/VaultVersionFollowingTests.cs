using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Vault.Tests;

/// <summary>
/// The vault root key as an <see cref="Core.RootKeys.IVersionedRootKey"/> (the shared contract), and what only Transit
/// does: the version a wrap records is the ciphertext's own <c>vault:vN:</c> prefix, which Vault decrypts by.
/// </summary>
public sealed class VaultVersionFollowingTests : VersionedRootKeyContract<VaultVersionedBackend>
{
    public static TheoryData<string> NotVersions => ["", "0", "-1", "v2", " 2", "99999999999"];

    [Fact]
    public async Task A_blob_moved_under_another_versions_key_id_by_editing_its_version_does_not_unwrap()
    {
        var aad = VaultTestOptions.Aad();
        Backend.Rotate();
        using var v2 = await Backend.OpenAsync();
        using var v1 = v2.WithVersion(FirstVersion);
        var blob = await v1.WrapAsync(RandomNumberGenerator.GetBytes(32), aad, CancellationToken.None);

        // vault:v1:… → vault:v2:…: now "recognised" under version 2's key_id, but Vault opens it with version 2's key.
        var edited = blob.ToArray();
        edited[1 + "vault:v".Length] = (byte)'2';
        Assert.True(v2.Recognizes(v2.KeyId, edited));

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => v2.UnwrapAsync(edited, aad, CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
    }
}
