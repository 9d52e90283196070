using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Pkcs11;

/// <summary>
/// The provider identity a PKCS#11 root key's key_id is derived from.
/// </summary>
/// <remarks>
/// kube-apiserver requires the same key_id from every control-plane node that holds the same root key, and a
/// Decrypt may land on any node (see docs on KeyIds). So the identity uses only what names the key identically
/// everywhere: the token label, the key's CKA_LABEL and/or CKA_ID, and the wrapping mechanism, in an
/// RFC 7512-like <c>attr=value;...</c> form with percent-encoded values (so a label containing <c>;</c> or
/// <c>=</c> cannot collide with another configuration). Deliberately absent: the slot id (SoftHSM2 and many HSMs
/// assign it at random), the object handle (per application), the module path (differs between distributions),
/// the PIN file and the token serial (an HA group of HSMs exposes one partition label over several serials).
/// The mechanism is part of it because a blob is only readable with the mechanism that made it.
/// Consequence for operators: a new key must get a new label or CKA_ID; deleting a key and generating another
/// under the same label and id would keep the key_id while old blobs become unreadable (hsm/README.md says so).
/// </remarks>
internal static class Pkcs11KeyIdentity
{
    /// <summary>The only wrapping mechanism this provider implements (CKM_AES_GCM, see <see cref="Pkcs11WrappedBlob"/>).</summary>
    public const string AesGcmMechanism = "aes-gcm";

    public static string Describe(Pkcs11RootKeyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var parts = new List<string>(4) { "token=" + Uri.EscapeDataString(options.TokenLabel) };
        if (!string.IsNullOrEmpty(options.KeyLabel))
        {
            parts.Add("object=" + Uri.EscapeDataString(options.KeyLabel));
        }

        var id = options.NormalizedKeyId();
        if (id is not null)
        {
            parts.Add("id=" + id);
        }

        parts.Add("mech=" + AesGcmMechanism);
        return string.Join(';', parts);
    }

    public static string KeyIdFor(Pkcs11RootKeyOptions options) => KeyIds.Derive(Pkcs11RootKey.ProviderName, Describe(options));
}
