using KmsPlugin.Core.Errors;
using Net.Pkcs11Interop.Common;

namespace KmsPlugin.Pkcs11;

/// <summary>
/// The one place that turns PKCS#11 return values (PKCS#11 v2.40 section 5.1) into <see cref="KmsErrorKind"/>s.
/// Messages carry the CKR name only: a CKR never contains a PIN or key bytes, and the PIN is never passed here.
/// </summary>
internal static class Pkcs11ErrorClassifier
{
    /// <summary>
    /// C_Login refused the PIN. Trying again with the same PIN can only count down the token's retry counter
    /// until it locks (CKF_USER_PIN_LOCKED), after which only the SO can unlock it: so this is RootKeyDenied and
    /// the caller must not retry.
    /// </summary>
    public static bool IsPinRejected(CKR rv) => rv is CKR.CKR_PIN_INCORRECT or CKR.CKR_PIN_LOCKED or CKR.CKR_PIN_EXPIRED
        or CKR.CKR_PIN_LEN_RANGE or CKR.CKR_PIN_INVALID;

    /// <summary>
    /// The session can no longer be used (the token went away, the device failed, the session was closed behind
    /// our back, or its login state was lost): drop it from the pool and open a fresh one on the next call.
    /// </summary>
    public static bool IsSessionBroken(CKR rv) => rv is CKR.CKR_TOKEN_NOT_PRESENT or CKR.CKR_DEVICE_REMOVED
        or CKR.CKR_DEVICE_ERROR or CKR.CKR_SESSION_HANDLE_INVALID or CKR.CKR_SESSION_CLOSED
        or CKR.CKR_USER_NOT_LOGGED_IN or CKR.CKR_CRYPTOKI_NOT_INITIALIZED;

    /// <summary>The cached key handle is stale (e.g. the token was re-inserted): look the key up again next time.</summary>
    public static bool IsKeyHandleStale(CKR rv) => rv is CKR.CKR_KEY_HANDLE_INVALID or CKR.CKR_OBJECT_HANDLE_INVALID;

    public static KmsErrorKind Classify(CKR rv) => IsPinRejected(rv) ? KmsErrorKind.RootKeyDenied : KmsErrorKind.RootKeyUnavailable;

    /// <summary>
    /// A typed error for a failed PKCS#11 call: <c>pkcs11 root key 'x': C_Encrypt failed: CKR_DEVICE_ERROR</c>, or with
    /// <paramref name="tokenLabel"/> <c>pkcs11 root key 'x': token 'kms': C_Encrypt failed: CKR_DEVICE_REMOVED</c>, so an
    /// operator with several tokens knows which one to look at.
    /// </summary>
    public static KmsPluginException ToException(string rootKeyName, Pkcs11Exception error, string? tokenLabel = null)
    {
        ArgumentNullException.ThrowIfNull(error);
        var token = tokenLabel is null ? "" : $"token '{tokenLabel}': ";
        return new KmsPluginException(Classify(error.RV),
            $"pkcs11 root key '{rootKeyName}': {token}{error.Method} failed: {error.RV}{Hint(error.RV)}", error);
    }

    /// <summary>What an operator should know about the token-gone codes: the error alone does not say whether to wait.</summary>
    private static string Hint(CKR rv) => rv is CKR.CKR_TOKEN_NOT_PRESENT or CKR.CKR_DEVICE_REMOVED or CKR.CKR_SLOT_ID_INVALID
        ? " (the token was removed or the HSM is unreachable; calls fail until it is back, KEKs already in memory keep working)"
        : "";
}
