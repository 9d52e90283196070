using System.Globalization;
using System.Text.Json;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Vault;

/// <summary>
/// What <c>GET /v1/{mount}/keys/{key}</c> says about a Transit key (Vault API docs, Transit "Read key"), and whether
/// the plugin can use it.
/// </summary>
internal sealed record VaultKeyInfo(string Type, int LatestVersion, int MinDecryptionVersion, int MinEncryptionVersion, bool Derived,
    bool SupportsEncryption, bool SupportsDecryption)
{
    /// <summary>
    /// Key types whose encrypt/decrypt take <c>associated_data</c> (Transit docs, "encrypt": AEAD ciphers only).
    /// The plugin requires it: the associated data names the key_id, so a wrapped KEK moved under another key_id fails
    /// Vault's authentication. RSA keys would need the binding done another way (a digest of the associated data inside
    /// the OAEP plaintext); no one has asked for RSA Transit keys for a KMS plugin, so they are refused, clearly.
    /// </summary>
    public static readonly IReadOnlySet<string> AeadTypes = new HashSet<string>(StringComparer.Ordinal)
    {
        "aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305",
    };

    public static VaultKeyInfo Parse(VaultResponse response)
    {
        var data = response.Section("data");
        return new VaultKeyInfo(
            data.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String ? type.GetString() ?? "" : "",
            Number(data, "latest_version"),
            Number(data, "min_decryption_version"),
            Number(data, "min_encryption_version"),
            Flag(data, "derived", false),
            Flag(data, "supports_encryption", true),
            Flag(data, "supports_decryption", true));
    }

    /// <summary>The version to encrypt with: <paramref name="pinned"/> or the latest, checked against what Vault allows.</summary>
    /// <exception cref="KmsPluginException">RootKeyDenied, naming the option to change.</exception>
    public int ChooseVersion(int? pinned, VaultTransitRootKeyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var key = $"{options.Mount}/keys/{options.KeyName}";
        if (!AeadTypes.Contains(Type))
        {
            throw options.Invalid("key", $"{key} is of type '{Type}'; the plugin needs an AEAD key type that takes associated_data ({string.Join(", ", AeadTypes)}), e.g. vault write -f {options.Mount}/keys/{options.KeyName} type=aes256-gcm96");
        }

        if (Derived)
        {
            throw options.Invalid("key", $"{key} is a derived key (derived=true), which needs a context on every call; create a key without derivation");
        }

        if (!SupportsEncryption || !SupportsDecryption)
        {
            throw options.Invalid("key", $"{key} does not support both encryption and decryption");
        }

        if (LatestVersion < 1)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"vault root key '{options.Name}': {key} reports no latest_version");
        }

        // min_encryption_version (Transit "Update key configuration"): 0 means the latest; Vault keeps it at or below
        // latest_version, so a report above it is a Vault we do not understand, not a version to wrap with.
        if (pinned is null && MinEncryptionVersion > LatestVersion)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                $"vault root key '{options.Name}': {key} reports min_encryption_version {MinEncryptionVersion.ToString(CultureInfo.InvariantCulture)} above latest_version {LatestVersion.ToString(CultureInfo.InvariantCulture)}");
        }

        var version = pinned ?? LatestVersion;
        if (version > LatestVersion)
        {
            throw options.Invalid("keyVersion", $"is {version.ToString(CultureInfo.InvariantCulture)} but the latest version of {key} is {LatestVersion.ToString(CultureInfo.InvariantCulture)}");
        }

        if (version < MinDecryptionVersion)
        {
            throw options.Invalid("keyVersion", $"is {version.ToString(CultureInfo.InvariantCulture)}, below min_decryption_version {MinDecryptionVersion.ToString(CultureInfo.InvariantCulture)} of {key}: Vault will not decrypt it (lower min_decryption_version to read old data)");
        }

        return version;
    }

    private static int Number(JsonElement data, string name) =>
        data.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n) ? n : 0;

    private static bool Flag(JsonElement data, string name, bool fallback) =>
        data.TryGetProperty(name, out var value) ? value.ValueKind == JsonValueKind.True : fallback;
}
