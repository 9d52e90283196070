using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.Unit;

public sealed class LocalRootKeyTests
{
    private static readonly byte[] Aad = "aad"u8.ToArray();

    [Fact]
    public void A_created_key_file_is_32_bytes_with_mode_0600()
    {
        using var dir = new TempDirectory();
        using var key = LocalRootKey.Open("dev", dir.FilePath("root.key"), create: true);
        var info = new FileInfo(dir.FilePath("root.key"));
        Assert.Equal(32, info.Length);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, info.UnixFileMode);
    }

    [Theory]
    [InlineData(UnixFileMode.GroupRead)]
    [InlineData(UnixFileMode.OtherRead)]
    [InlineData(UnixFileMode.GroupWrite)]
    public void A_key_file_accessible_by_group_or_others_is_refused(UnixFileMode extra)
    {
        using var dir = new TempDirectory();
        var path = dir.FilePath("root.key");
        LocalRootKey.Open("dev", path, create: true).Dispose();
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | extra);
        var error = Assert.Throws<KmsPluginException>(() => LocalRootKey.Open("dev", path, create: false));
        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("chmod 600", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_key_file_of_the_wrong_size_is_refused()
    {
        using var dir = new TempDirectory();
        var path = dir.FilePath("root.key");
        File.WriteAllBytes(path, new byte[16]);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var error = Assert.Throws<KmsPluginException>(() => LocalRootKey.Open("dev", path, create: false));
        Assert.Contains("exactly 32 bytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_key_file_without_create_is_a_clear_error()
    {
        using var dir = new TempDirectory();
        var error = Assert.Throws<KmsPluginException>(() => LocalRootKey.Open("dev", dir.FilePath("missing.key"), create: false));
        Assert.Contains("does not exist", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_same_key_file_gives_the_same_key_id_and_unwraps_the_other_instances_wraps()
    {
        using var dir = new TempDirectory();
        using var first = LocalRootKey.Open("a", dir.FilePath("root.key"), create: true);
        using var second = LocalRootKey.Open("b", dir.FilePath("root.key"), create: false);
        using var other = LocalRootKey.Open("c", dir.FilePath("other.key"), create: true);
        Assert.Equal(first.KeyId, second.KeyId);
        Assert.NotEqual(first.KeyId, other.KeyId);
        Assert.StartsWith("local-", first.KeyId, StringComparison.Ordinal);

        var kek = new byte[32];
        Random.Shared.NextBytes(kek);
        var wrapped = await first.WrapAsync(kek, Aad, CancellationToken.None);
        using var unwrapped = await second.UnwrapAsync(wrapped, Aad, CancellationToken.None);
        Assert.Equal(kek, unwrapped.Span.ToArray());
        Assert.Equal(KmsErrorKind.Corruption, (await Assert.ThrowsAsync<KmsPluginException>(() => other.UnwrapAsync(wrapped, Aad, CancellationToken.None))).Kind);
        Assert.Equal(KmsErrorKind.Corruption, (await Assert.ThrowsAsync<KmsPluginException>(() => first.UnwrapAsync(wrapped, "other"u8.ToArray(), CancellationToken.None))).Kind);
    }
}
