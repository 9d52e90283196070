using KmsPlugin.TestSupport;

namespace KmsPlugin.Azure.Tests;

/// <summary><c>kms-plugin doctor</c> with an azure root key (the shared contract), against the fake vault and Entra ID.</summary>
public sealed class DoctorTests() : VersionedDoctorContract("azure", "akv")
{
    private const string Hint = "grant the identity wrapKey, unwrapKey and get";
    private AzureTestBed? _bed;
    private string _older = "";
    private string _current = "";

    private AzureTestBed Bed => _bed ?? throw new InvalidOperationException("the bed starts in InitializeAsync");

    protected override TempDirectory Directory => Bed.Directory;

    protected override string RootKeyEntry => Bed.RootKeyYaml();

    protected override string FollowedVersion => _current;

    protected override string OlderVersion => _older;

    protected override IReadOnlyList<string> DeniedWrapMessage => ["wrapkey failed: HTTP 403 (Forbidden)", Hint];

    protected override IReadOnlyList<string> DeniedUnwrapMessage => ["unwrapkey failed: HTTP 403 (Forbidden)", Hint];

    public override async Task InitializeAsync()
    {
        _bed = await AzureTestBed.StartAsync();
        _older = Bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
        _current = Bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
    }

    public override async Task DisposeAsync()
    {
        if (_bed is not null)
        {
            await _bed.DisposeAsync();
        }
    }

    protected override string PinnedEntry(string version) => Bed.RootKeyYaml(version: version);

    protected override string KeyIdAt(string version) => AzureVersionedBackend.KeyIdOf(Bed, version);

    protected override int KeyReads() => Bed.Vault.Requests("get");

    protected override int Wraps() => Bed.Vault.Requests("wrapkey");

    protected override int Unwraps() => Bed.Vault.Requests("unwrapkey");

    protected override void DenyWraps() => Bed.Vault.Faults.Add(new Fault { Operation = "wrapkey", Status = 403, Code = "Forbidden" });

    protected override void DenyUnwraps() => Bed.Vault.Faults.Add(new Fault { Operation = "unwrapkey", Status = 403, Code = "Forbidden" });
}
