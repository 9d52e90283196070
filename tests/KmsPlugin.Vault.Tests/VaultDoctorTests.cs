using KmsPlugin.Cli;
using KmsPlugin.Configuration;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Vault.Tests;

/// <summary><c>kms-plugin doctor --config FILE</c> with a vault root key, against the Transit fake.</summary>
public sealed class VaultDoctorTests : IAsyncLifetime, IDisposable
{
    private readonly TempDirectory _dir = new();
    private FakeVault _vault = null!;

    public async Task InitializeAsync()
    {
        _vault = await FakeVault.StartAsync();
        _vault.CreateKey("k8s-secrets").Rotate(); // latest version 2
        _vault.AcceptedJwts["doctor-sa-jwt"] = true;
        await File.WriteAllTextAsync(_dir.FilePath("sa-token"), "doctor-sa-jwt");
    }

    public async Task DisposeAsync() => await _vault.DisposeAsync();

    public void Dispose() => _dir.Dispose();

    private async Task<(int Exit, string Output)> DoctorAsync()
    {
        var path = _dir.FilePath("config.yaml");
        await File.WriteAllTextAsync(path, $"""
            listen: unix://{_dir.FilePath("kms.sock")}
            rootKeyTimeout: 3s
            rotation:
              stableProbes: 4
            rootKeys:
              - name: vault-prod
                provider: vault
                vault:
                  address: {_vault.Address.ToString().TrimEnd('/')}
                  key: k8s-secrets
                  networkTimeout: 1s
                  retryBaseDelay: 1ms
                  retryMaxDelay: 5ms
                  auth:
                    method: kubernetes
                    role: {FakeVault.KubernetesRole}
                    tokenFile: sa-token
            """);
        using var output = new StringWriter();
        var exit = await DoctorCommand.RunAsync(ConfigLoader.LoadFile(path, null), path, output);
        return (exit, output.ToString());
    }

    [Fact]
    public async Task Doctor_reaches_Vault_wraps_and_unwraps_and_prints_the_followed_version_and_the_key_id()
    {
        var (exit, output) = await DoctorAsync();

        Assert.True(exit == Commands.Ok, output);
        var keyId = KeyIds.Derive("vault", VaultTransitRootKey.Identity(new VaultTransitRootKeyOptions
        {
            Name = "vault-prod",
            Address = _vault.Address,
            KeyName = "k8s-secrets",
            Auth = new VaultAuthOptions { Method = VaultAuthMethod.Kubernetes, Role = FakeVault.KubernetesRole },
        }, 2));
        Assert.Contains($"root key vault-prod (vault, primary): opened in", output, StringComparison.Ordinal);
        Assert.Contains("version 2 (the backend's current version), followed", output, StringComparison.Ordinal);
        Assert.Contains("after 4 stable probes (rotation.stableProbes)", output, StringComparison.Ordinal);
        Assert.Contains("wrap OK", output, StringComparison.Ordinal);
        Assert.Contains("unwrap OK", output, StringComparison.Ordinal);
        Assert.Contains($"key_id:  the plugin will report {keyId}", output, StringComparison.Ordinal);
        Assert.EndsWith("doctor: OK", output.TrimEnd(), StringComparison.Ordinal);
        Assert.Equal(1, _vault.Calls("encrypt"));
        Assert.Equal(1, _vault.Calls("decrypt"));
    }

    [Fact]
    public async Task Doctor_shows_a_policy_that_denies_transit_encrypt_as_a_failing_wrap_and_exits_1()
    {
        _vault.Fault = new FakeFault(FaultKind.AccessDenied, "encrypt");

        var (exit, output) = await DoctorAsync();

        Assert.True(exit == Commands.Failed, output);
        Assert.Contains("root key vault-prod (vault, primary): opened in", output, StringComparison.Ordinal);
        Assert.Contains("root key vault-prod (vault, primary): PROBLEM (RootKeyDenied) wrapping a canary:", output, StringComparison.Ordinal);
        Assert.Contains("transit encrypt failed: HTTP 403: 1 error occurred: * permission denied", output, StringComparison.Ordinal);
        Assert.Contains("check the token's policy", output, StringComparison.Ordinal);
        Assert.DoesNotContain("key_id:  the plugin will report", output, StringComparison.Ordinal);
        Assert.Contains("doctor: PROBLEMS FOUND", output, StringComparison.Ordinal);
    }
}
