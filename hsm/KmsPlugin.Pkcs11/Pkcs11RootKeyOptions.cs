using System.Globalization;
using System.Text;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Pkcs11;

/// <summary>
/// Configuration of one <c>provider: pkcs11</c> root key (the <c>pkcs11:</c> block of a <c>rootKeys</c> entry).
/// The PIN itself never appears here: only the path of a 0600 file holding it.
/// </summary>
public sealed record Pkcs11RootKeyOptions
{
    public const int DefaultSessionPoolSize = 4;
    public const int MaxSessionPoolSize = 256;

    /// <summary>CK_TOKEN_INFO.label is a fixed 32-byte, blank-padded field (PKCS#11 v2.40 section 3.2).</summary>
    public const int MaxTokenLabelBytes = 32;

    /// <summary>The operator's name for this root key (<c>rootKeys[].name</c>); for logs and errors only.</summary>
    public required string Name { get; init; }

    /// <summary>Absolute path of the vendor's PKCS#11 module (<c>library</c>), e.g. <c>/usr/lib/softhsm/libsofthsm2.so</c>.</summary>
    public required string Library { get; init; }

    /// <summary>The token's label (<c>tokenLabel</c>). Slots are chosen by label because slot ids are not stable.</summary>
    public required string TokenLabel { get; init; }

    /// <summary>CKA_LABEL of the AES key (<c>keyLabel</c>). At least one of this and <see cref="KeyId"/> is required.</summary>
    public string? KeyLabel { get; init; }

    /// <summary>CKA_ID of the AES key as hex, e.g. <c>01</c> or <c>a1b2</c> (<c>keyId</c>).</summary>
    public string? KeyId { get; init; }

    /// <summary>Path of a file (mode 0600) holding the CKU_USER PIN; one trailing newline is ignored (<c>pinFile</c>).</summary>
    public required string PinFile { get; init; }

    /// <summary>Most PKCS#11 sessions this key keeps open; also the most concurrent HSM calls (<c>sessionPoolSize</c>).</summary>
    public int SessionPoolSize { get; init; } = DefaultSessionPoolSize;

    /// <summary>Checks every option and fails with a message naming the offending one.</summary>
    /// <exception cref="KmsPluginException">RootKeyDenied: configuration a retry will not fix.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Name))
        {
            throw Invalid("name", "must not be empty");
        }

        if (string.IsNullOrWhiteSpace(Library))
        {
            throw Invalid("library", "must name the PKCS#11 module (.so) of the HSM vendor");
        }

        // A bare name would be resolved through the dynamic linker's search path, which differs between nodes
        // and is an easy way to load the wrong module.
        if (!Path.IsPathFullyQualified(Library))
        {
            throw Invalid("library", $"must be an absolute path, got '{Library}'");
        }

        if (string.IsNullOrEmpty(TokenLabel))
        {
            throw Invalid("tokenLabel", "must not be empty (slots are selected by token label)");
        }

        if (Encoding.UTF8.GetByteCount(TokenLabel) > MaxTokenLabelBytes)
        {
            throw Invalid("tokenLabel", $"'{TokenLabel}' is longer than the {MaxTokenLabelBytes} bytes PKCS#11 allows for a token label");
        }

        if (TokenLabel != TokenLabel.TrimEnd(' '))
        {
            // Token labels are blank-padded on the wire, so trailing blanks cannot be matched.
            throw Invalid("tokenLabel", $"'{TokenLabel}' must not end with blanks");
        }

        if (string.IsNullOrEmpty(KeyLabel) && string.IsNullOrEmpty(KeyId))
        {
            throw Invalid("keyLabel", "keyLabel or keyId (or both) must select the AES key");
        }

        if (KeyLabel is not null && KeyLabel.Length == 0)
        {
            throw Invalid("keyLabel", "must not be empty when set");
        }

        if (KeyId is not null)
        {
            _ = ParseKeyId(KeyId);
        }

        if (string.IsNullOrWhiteSpace(PinFile))
        {
            throw Invalid("pinFile", "must name the file holding the token's user PIN (PINs are never put in the config)");
        }

        if (SessionPoolSize is < 1 or > MaxSessionPoolSize)
        {
            throw Invalid("sessionPoolSize", $"must be between 1 and {MaxSessionPoolSize}, got {SessionPoolSize.ToString(CultureInfo.InvariantCulture)}");
        }
    }

    /// <summary>CKA_ID bytes, or null when only the label selects the key.</summary>
    internal byte[]? KeyIdBytes() => KeyId is null ? null : ParseKeyId(KeyId);

    /// <summary>CKA_ID as lowercase hex, so <c>0A</c> and <c>0a</c> name the same key and derive the same key_id.</summary>
    internal string? NormalizedKeyId() => KeyId is null ? null : Convert.ToHexStringLower(ParseKeyId(KeyId));

    private byte[] ParseKeyId(string value)
    {
        var hex = value.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? value[2..] : value;
        if (hex.Length == 0 || hex.Length % 2 != 0 || !hex.All(char.IsAsciiHexDigit))
        {
            throw Invalid("keyId", $"must be the key's CKA_ID as an even number of hex digits (e.g. 01), got '{value}'");
        }

        return Convert.FromHexString(hex);
    }

    private KmsPluginException Invalid(string option, string problem) =>
        new(KmsErrorKind.RootKeyDenied, $"pkcs11 root key '{Name}': option {option} {problem}");
}
