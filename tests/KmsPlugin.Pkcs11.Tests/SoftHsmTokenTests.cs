using System.Diagnostics;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Pkcs11.Tests;

/// <summary>The fixture itself: in-process tokens via SOFTHSM2_CONF, private tokens for child processes.</summary>
public sealed class SoftHsmTokenTests
{
    [Fact]
    public void The_shared_token_points_this_process_at_its_configuration()
    {
        var token = SoftHsmToken.Shared;

        Assert.Equal(token.ConfPath, Environment.GetEnvironmentVariable(SoftHsmToken.ConfVariable));
        Assert.Equal(token.ConfPath, SoftHsmToken.SharedSecondary.ConfPath);
        Assert.NotEqual(token.PinFile, SoftHsmToken.SharedSecondary.PinFile);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(token.PinFile));
        Assert.True(File.Exists(token.Library));
    }

    [Fact]
    public async Task A_created_token_is_seen_by_a_child_process_given_its_environment_and_this_process_is_untouched()
    {
        var before = Environment.GetEnvironmentVariable(SoftHsmToken.ConfVariable);
        using var token = SoftHsmToken.Create(tokenLabel: "child", keyLabel: "child-kek", keyIdHex: "C0");

        Assert.Equal(before, Environment.GetEnvironmentVariable(SoftHsmToken.ConfVariable));
        Assert.Equal("c0", token.KeyIdHex);
        var startInfo = new ProcessStartInfo("softhsm2-util", "--show-slots") { RedirectStandardOutput = true };
        token.ApplyTo(startInfo);
        using var child = Process.Start(startInfo)!;
        var output = await child.StandardOutput.ReadToEndAsync();
        await child.WaitForExitAsync();

        Assert.Contains("child", output, StringComparison.Ordinal);
        Assert.DoesNotContain("kms-2", output, StringComparison.Ordinal);
        var directory = token.Directory;
        token.Dispose();
        Assert.False(Directory.Exists(directory));
    }
}
