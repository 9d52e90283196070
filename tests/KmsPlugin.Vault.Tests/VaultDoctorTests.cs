using KmsPlugin.TestSupport;

namespace KmsPlugin.Vault.Tests;

/// <summary><c>kms-plugin doctor --config FILE</c> with a vault root key (the shared contract), against the Transit fake.</summary>
public sealed class VaultDoctorTests() : VersionedDoctorContract("vault", "vault-prod")
{
    private const string Hint = "check the token's policy";
    private VaultPluginBed? _bed;

    private VaultPluginBed Bed => _bed ?? throw new InvalidOperationException("the bed starts in InitializeAsync");

    protected override TempDirectory Directory => Bed.Directory;

    protected override string RootKeyEntry => Bed.RootKeyYaml();

    protected override string FollowedVersion => "2";

    protected override string OlderVersion => "1";

    protected override IReadOnlyList<string> DeniedWrapMessage => ["transit encrypt failed: HTTP 403: 1 error occurred: * permission denied", Hint];

    protected override IReadOnlyList<string> DeniedUnwrapMessage => ["transit decrypt failed: HTTP 403: 1 error occurred: * permission denied", Hint];

    public override async Task InitializeAsync()
    {
        _bed = await VaultPluginBed.StartAsync();
        Bed.Key.Rotate(); // latest version 2
    }

    public override async Task DisposeAsync()
    {
        if (_bed is not null)
        {
            await _bed.DisposeAsync();
        }
    }

    protected override string PinnedEntry(string version) => Bed.RootKeyYaml(keyVersion: int.Parse(version, System.Globalization.CultureInfo.InvariantCulture));

    protected override string KeyIdAt(string version) => Bed.KeyIdAt(int.Parse(version, System.Globalization.CultureInfo.InvariantCulture));

    protected override int KeyReads() => Bed.Vault.Calls("keys");

    protected override int Wraps() => Bed.Vault.Calls("encrypt");

    protected override int Unwraps() => Bed.Vault.Calls("decrypt");

    protected override void DenyWraps() => Bed.Vault.Fault = new FakeFault(FaultKind.AccessDenied, "encrypt");

    protected override void DenyUnwraps() => Bed.Vault.Fault = new FakeFault(FaultKind.AccessDenied, "decrypt");
}
