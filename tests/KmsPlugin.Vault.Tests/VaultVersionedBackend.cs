using System.Globalization;
using System.Text;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Vault.Tests;

/// <summary>
/// The Transit fake as a backend whose key's latest version moves (<c>vault write -f transit/keys/NAME/rotate</c>),
/// for the shared contracts: the vault root key on Transit key <c>k8s</c> with Kubernetes auth.
/// </summary>
public sealed class VaultVersionedBackend : IVersionedKeyBackend
{
    private const string OtherKeyName = "other";
    private readonly TempDirectory _dir = new();
    private FakeVault? _vault;
    private FakeTransitKey? _key;
    private VaultTransitRootKeyOptions? _options;

    public string Provider => "vault";

    public FakeVault Vault => _vault ?? throw new InvalidOperationException("the backend starts in StartAsync");

    public string DeniedKeyReadMessage => "reading the transit key";

    private VaultTransitRootKeyOptions Options => _options ?? throw new InvalidOperationException("the backend starts in StartAsync");

    private static int Number(string version) => int.Parse(version, NumberStyles.None, CultureInfo.InvariantCulture);

    public async Task<string> StartAsync()
    {
        _vault = await FakeVault.StartAsync();
        _key = _vault.CreateKey();
        _options = VaultTestOptions.Kubernetes(_vault, _dir);
        return "1";
    }

    public async Task<IVersionedRootKey> OpenAsync(string? pinnedVersion = null) =>
        await VaultTransitRootKey.OpenAsync(pinnedVersion is null ? Options : Options with { KeyVersion = Number(pinnedVersion) }, CancellationToken.None);

    public async Task<IVersionedRootKey> OpenOtherKeyAsync()
    {
        Vault.CreateKey(OtherKeyName);
        return await VaultTransitRootKey.OpenAsync(Options with { KeyName = OtherKeyName }, CancellationToken.None);
    }

    public string Rotate()
    {
        _key!.Rotate();
        return _key.Versions.Count.ToString(CultureInfo.InvariantCulture);
    }

    public string KeyIdOf(string version) => KeyIds.Derive("vault", VaultTransitRootKey.Identity(Options, Number(version)));

    public string OtherKeyIdOf(string version) => KeyIds.Derive("vault", VaultTransitRootKey.Identity(Options with { KeyName = OtherKeyName }, Number(version)));

    /// <summary><c>format(1) ‖ "vault:v{N}:" ‖ base64</c>: the Transit ciphertext's own version prefix.</summary>
    public string? VersionRecordedIn(byte[] wrapped)
    {
        var text = wrapped.Length > 1 && wrapped[0] == 0x01 ? Encoding.ASCII.GetString(wrapped, 1, wrapped.Length - 1) : "";
        var colon = text.IndexOf(':', "vault:v".Length);
        return text.StartsWith("vault:v", StringComparison.Ordinal) && colon > 0 ? text["vault:v".Length..colon] : null;
    }

    public int WrapsWith(string version) => Vault.EncryptRequests.Count(r => (int?)r["key_version"] == Number(version));

    public int KeyReads() => Vault.Calls("keys");

    public int CredentialsIssued() => Vault.LoginCredentialsSeen.Count;

    public void DenyKeyReads() => Vault.PolicyDenies = true;

    public async ValueTask DisposeAsync()
    {
        if (_vault is not null)
        {
            await _vault.DisposeAsync();
        }

        _dir.Dispose();
    }
}
