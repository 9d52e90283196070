using KmsPlugin.Cli;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Azure.Tests;

/// <summary><c>kms-plugin doctor</c> with an azure root key, against the fake vault and Entra ID.</summary>
public sealed class DoctorTests
{
    private static async Task<(int Exit, string Output)> DoctorAsync(AzureTestBed bed, string rootKeys)
    {
        using var output = new StringWriter();
        var exit = await DoctorCommand.RunAsync(bed.PluginConfig(rootKeys), "config.yaml", output);
        return (exit, output.ToString());
    }

    [Fact]
    public async Task Doctor_reaches_the_vault_wraps_and_unwraps_and_prints_the_followed_version_and_the_key_id()
    {
        await using var bed = await AzureTestBed.StartAsync();
        var version = bed.Vault.AddRsaVersion(AzureTestBed.KeyName);

        var (exit, output) = await DoctorAsync(bed, bed.RootKeyYaml());

        Assert.True(exit == Commands.Ok, output);
        var keyId = KeyIds.Derive("azure", $"{bed.Vault.VaultUrl}/keys/{AzureTestBed.KeyName}/{version}");
        Assert.Contains($"root key akv (azure, primary): opened in", output, StringComparison.Ordinal);
        Assert.Contains($"version {version} (the backend's current version), followed", output, StringComparison.Ordinal);
        Assert.Contains("wrap OK", output, StringComparison.Ordinal);
        Assert.Contains("unwrap OK", output, StringComparison.Ordinal);
        Assert.Contains($"key_id:  the plugin will report {keyId}", output, StringComparison.Ordinal);
        Assert.EndsWith("doctor: OK", output.TrimEnd(), StringComparison.Ordinal);
        Assert.Equal(1, bed.Vault.Requests("wrapkey"));
        Assert.Equal(1, bed.Vault.Requests("unwrapkey"));
    }

    [Fact]
    public async Task Doctor_prints_a_pinned_version_as_pinned()
    {
        await using var bed = await AzureTestBed.StartAsync();
        var v1 = bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);

        var (exit, output) = await DoctorAsync(bed, bed.RootKeyYaml(version: v1));

        Assert.True(exit == Commands.Ok, output);
        Assert.Contains($"version {v1}, pinned", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Doctor_shows_an_identity_without_wrapKey_permission_as_a_failing_wrap_and_exits_1()
    {
        await using var bed = await AzureTestBed.StartAsync();
        bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        bed.Vault.Faults.Add(new Fault { Operation = "wrapkey", Status = 403, Code = "Forbidden" });

        var (exit, output) = await DoctorAsync(bed, bed.RootKeyYaml());

        Assert.Equal(Commands.Failed, exit);
        Assert.Contains("root key akv (azure, primary): opened in", output, StringComparison.Ordinal);
        Assert.Contains("root key akv (azure, primary): PROBLEM (RootKeyDenied) wrapping a canary:", output, StringComparison.Ordinal);
        Assert.Contains("wrapkey failed: HTTP 403 (Forbidden)", output, StringComparison.Ordinal);
        Assert.Contains("grant the identity wrapKey, unwrapKey and get", output, StringComparison.Ordinal);
        Assert.DoesNotContain("key_id:  the plugin will report", output, StringComparison.Ordinal);
        Assert.Contains("doctor: PROBLEMS FOUND", output, StringComparison.Ordinal);
    }
}
