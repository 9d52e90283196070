using System.Globalization;
using System.Text;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Gcp.Tests.Fakes;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Gcp.Tests;

/// <summary>
/// The fake Cloud KMS as a backend whose CryptoKey's primary version moves (a rotation makes a new version primary), for
/// the shared contracts: the gcp root key on <see cref="FakeCloudKms.CryptoKey"/> through Workload Identity Federation.
/// </summary>
public sealed class GcpVersionedBackend : IVersionedKeyBackend
{
    private GcpTestBed? _bed;
    private string? _otherKey;

    public string Provider => "gcp";

    internal GcpTestBed Bed => _bed ?? throw new InvalidOperationException("the backend starts in StartAsync");

    public string DeniedKeyReadMessage => "PERMISSION_DENIED";

    /// <summary>The key_id of <paramref name="version"/> of a CryptoKey: the hash of its CryptoKeyVersion resource name.</summary>
    public static string KeyIdOf(string cryptoKey, string version) => KeyIds.Derive("gcp", $"{cryptoKey}/cryptoKeyVersions/{version}");

    public async Task<string> StartAsync()
    {
        _bed = await GcpTestBed.StartAsync();
        return Bed.Kms.AddVersion().ToString(CultureInfo.InvariantCulture);
    }

    public async Task<IVersionedRootKey> OpenAsync(string? pinnedVersion = null) => await Bed.OpenAsync(Bed.Options(version: pinnedVersion));

    public async Task<IVersionedRootKey> OpenOtherKeyAsync()
    {
        _otherKey = Bed.Kms.AddCryptoKey("other");
        return await Bed.OpenAsync(Bed.Options(name: "other") with { CryptoKey = _otherKey });
    }

    public string Rotate() => Bed.Kms.AddVersion(makePrimary: true).ToString(CultureInfo.InvariantCulture);

    public string KeyIdOf(string version) => KeyIdOf(FakeCloudKms.CryptoKey, version);

    public string OtherKeyIdOf(string version) => KeyIdOf(_otherKey ?? throw new InvalidOperationException("no other key yet"), version);

    /// <summary><c>format(1) ‖ versionLength(1) ‖ version digits ‖ ciphertext</c> (GcpWrappedBlob).</summary>
    public string? VersionRecordedIn(byte[] wrapped) =>
        wrapped.Length > 2 && wrapped[0] == 0x01 && wrapped.Length > 2 + wrapped[1] ? Encoding.ASCII.GetString(wrapped, 2, wrapped[1]) : null;

    public int WrapsWith(string version) => Bed.Kms.Encrypts(int.Parse(version, CultureInfo.InvariantCulture));

    public int KeyReads() => Bed.Kms.Requests("get");

    public int CredentialsIssued() => Bed.Kms.TokenRequests.Count;

    public void DenyKeyReads() => Bed.Kms.Faults.Add(new Fault { Operation = "get", Status = 403, Code = "PERMISSION_DENIED" });

    public async ValueTask DisposeAsync()
    {
        if (_bed is not null)
        {
            await _bed.DisposeAsync();
        }
    }
}
