using System.Text;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Azure.Tests;

/// <summary>
/// The fake vault as a backend whose key's newest version moves (the vault rotates the key: a new version), for the
/// shared contracts: the azure root key on <see cref="AzureTestBed.KeyName"/> (RSA) through workload identity.
/// </summary>
public sealed class AzureVersionedBackend : IVersionedKeyBackend
{
    private const string OtherKeyName = "other-kek";
    private AzureTestBed? _bed;

    public string Provider => "azure";

    internal AzureTestBed Bed => _bed ?? throw new InvalidOperationException("the backend starts in StartAsync");

    public string DeniedKeyReadMessage => "HTTP 403";

    /// <summary>The key_id of <paramref name="version"/> of key <paramref name="keyName"/>: the hash of its Key Vault key identifier.</summary>
    internal static string KeyIdOf(AzureTestBed bed, string version, string keyName = AzureTestBed.KeyName) =>
        KeyIds.Derive("azure", $"{bed.Vault.VaultUrl}/keys/{keyName}/{version}");

    public async Task<string> StartAsync()
    {
        _bed = await AzureTestBed.StartAsync();
        return Bed.Vault.AddRsaVersion(AzureTestBed.KeyName);
    }

    public async Task<IVersionedRootKey> OpenAsync(string? pinnedVersion = null) => await Bed.OpenAsync(Bed.Options(version: pinnedVersion));

    public async Task<IVersionedRootKey> OpenOtherKeyAsync()
    {
        Bed.Vault.AddRsaVersion(OtherKeyName);
        return await Bed.OpenAsync(Bed.Options(keyName: OtherKeyName, name: "other"));
    }

    public string Rotate() => Bed.Vault.AddRsaVersion(AzureTestBed.KeyName);

    public string KeyIdOf(string version) => KeyIdOf(Bed, version);

    public string OtherKeyIdOf(string version) => KeyIdOf(Bed, version, OtherKeyName);

    /// <summary><c>format(1) ‖ algorithm(1) ‖ versionLength(1) ‖ keyVersion ‖ wrapkey output</c> (AzureWrappedBlob).</summary>
    public string? VersionRecordedIn(byte[] wrapped) =>
        wrapped.Length > 3 && wrapped[0] == 0x01 && wrapped.Length > 3 + wrapped[2] ? Encoding.ASCII.GetString(wrapped, 3, wrapped[2]) : null;

    public int WrapsWith(string version) => Bed.Vault.Requests("wrapkey", version);

    public int KeyReads() => Bed.Vault.Requests("get");

    public int CredentialsIssued() => Bed.Vault.TokenRequests.Count;

    public void DenyKeyReads() => Bed.Vault.Faults.Add(new Fault { Operation = "get", Status = 403, Code = "Forbidden" });

    public async ValueTask DisposeAsync()
    {
        if (_bed is not null)
        {
            await _bed.DisposeAsync();
        }
    }
}
