using KmsPlugin.Cli;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Gcp.Tests.Fakes;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Gcp.Tests;

/// <summary><c>kms-plugin doctor</c> with a gcp root key, against the fake Cloud KMS and token endpoints.</summary>
public sealed class DoctorTests
{
    private static async Task<(int Exit, string Output)> DoctorAsync(GcpTestBed bed, string rootKeys)
    {
        using var output = new StringWriter();
        var exit = await DoctorCommand.RunAsync(bed.PluginConfig(rootKeys), "config.yaml", output);
        return (exit, output.ToString());
    }

    [Fact]
    public async Task Doctor_reaches_Cloud_KMS_wraps_and_unwraps_and_prints_the_followed_version_and_the_key_id()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        bed.Kms.AddVersion(makePrimary: true);

        var (exit, output) = await DoctorAsync(bed, bed.RootKeyYaml());

        Assert.True(exit == Commands.Ok, output);
        var keyId = KeyIds.Derive("gcp", $"{FakeCloudKms.CryptoKey}/cryptoKeyVersions/2");
        Assert.Contains("root key gcpkms (gcp, primary): opened in", output, StringComparison.Ordinal);
        Assert.Contains("version 2 (the backend's current version), followed", output, StringComparison.Ordinal);
        Assert.Contains("wrap OK", output, StringComparison.Ordinal);
        Assert.Contains("unwrap OK", output, StringComparison.Ordinal);
        Assert.Contains($"key_id:  the plugin will report {keyId}", output, StringComparison.Ordinal);
        Assert.EndsWith("doctor: OK", output.TrimEnd(), StringComparison.Ordinal);
        Assert.Equal(1, bed.Kms.Requests("encrypt"));
        Assert.Equal(1, bed.Kms.Requests("decrypt"));
    }

    [Fact]
    public async Task Doctor_shows_an_identity_without_decrypt_permission_as_a_failing_unwrap_and_exits_1()
    {
        await using var bed = await GcpTestBed.StartAsync();
        bed.Kms.AddVersion();
        bed.Kms.Faults.Add(new Fault { Operation = "decrypt", Status = 403, Code = "PERMISSION_DENIED" });

        var (exit, output) = await DoctorAsync(bed, bed.RootKeyYaml(version: "1"));

        Assert.Equal(Commands.Failed, exit);
        Assert.Contains("version 1, pinned", output, StringComparison.Ordinal);
        Assert.Contains("root key gcpkms (gcp, primary): PROBLEM (RootKeyDenied) unwrapping the canary:", output, StringComparison.Ordinal);
        Assert.Contains("decrypt failed: HTTP 403 PERMISSION_DENIED", output, StringComparison.Ordinal);
        Assert.Contains("grant roles/cloudkms.cryptoKeyEncrypterDecrypter", output, StringComparison.Ordinal);
        Assert.DoesNotContain("key_id:  the plugin will report", output, StringComparison.Ordinal);
        Assert.Contains("doctor: PROBLEMS FOUND", output, StringComparison.Ordinal);
    }
}
