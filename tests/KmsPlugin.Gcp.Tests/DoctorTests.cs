using KmsPlugin.Gcp.Tests.Fakes;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Gcp.Tests;

/// <summary><c>kms-plugin doctor</c> with a gcp root key (the shared contract), against the fake Cloud KMS and token endpoints.</summary>
public sealed class DoctorTests() : VersionedDoctorContract("gcp", "gcpkms")
{
    private GcpTestBed? _bed;

    private GcpTestBed Bed => _bed ?? throw new InvalidOperationException("the bed starts in InitializeAsync");

    protected override TempDirectory Directory => Bed.Directory;

    protected override string RootKeyEntry => Bed.RootKeyYaml();

    protected override string FollowedVersion => "2";

    protected override string OlderVersion => "1";

    protected override IReadOnlyList<string> DeniedWrapMessage => ["encrypt failed: HTTP 403 PERMISSION_DENIED", "grant roles/cloudkms.cryptoKeyEncrypterDecrypter"];

    protected override IReadOnlyList<string> DeniedUnwrapMessage => ["decrypt failed: HTTP 403 PERMISSION_DENIED", "grant roles/cloudkms.cryptoKeyEncrypterDecrypter"];

    public override async Task InitializeAsync()
    {
        _bed = await GcpTestBed.StartAsync();
        Bed.Kms.AddVersion();
        Bed.Kms.AddVersion(makePrimary: true);
    }

    public override async Task DisposeAsync()
    {
        if (_bed is not null)
        {
            await _bed.DisposeAsync();
        }
    }

    protected override string PinnedEntry(string version) => Bed.RootKeyYaml(version: version);

    protected override string KeyIdAt(string version) => GcpVersionedBackend.KeyIdOf(FakeCloudKms.CryptoKey, version);

    protected override int KeyReads() => Bed.Kms.Requests("get");

    protected override int Wraps() => Bed.Kms.Requests("encrypt");

    protected override int Unwraps() => Bed.Kms.Requests("decrypt");

    protected override void DenyWraps() => Bed.Kms.Faults.Add(new Fault { Operation = "encrypt", Status = 403, Code = "PERMISSION_DENIED" });

    protected override void DenyUnwraps() => Bed.Kms.Faults.Add(new Fault { Operation = "decrypt", Status = 403, Code = "PERMISSION_DENIED" });
}
