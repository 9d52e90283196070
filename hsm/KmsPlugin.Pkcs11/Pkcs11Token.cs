using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace KmsPlugin.Pkcs11;

/// <summary>
/// One token (selected by label) of a loaded module, and this process's login to it.
/// </summary>
/// <remarks>
/// PKCS#11 login state belongs to the application, not to a session (v2.40 section 5.6, C_Login): one C_Login
/// covers every session the process has on the token, and it ends when the last session closes. So the token keeps
/// one "anchor" session open for as long as any root key uses it, logs in once through it, and remembers (as a keyed
/// digest) which PIN did so: a second root key on the same token with the same PIN needs no C_Login, and one with a
/// different PIN is refused without trying it, because C_Login would only answer CKR_USER_ALREADY_LOGGED_IN.
/// </remarks>
internal sealed class Pkcs11Token
{
    private readonly Pkcs11Module _module;
    private readonly Lock _gate = new();
    private volatile ISlot _slot;
    private ISession? _anchor;
    private byte[]? _loggedInPinDigest;

    internal Pkcs11Token(Pkcs11Module module, string label, ISlot slot)
    {
        _module = module;
        Label = label;
        _slot = slot;
    }

    public string Label { get; }

    /// <summary>Root keys using this token; guarded by the module's lock.</summary>
    internal int References { get; set; }

    /// <summary>The single slot whose token has this label. Slot ids are not stable (SoftHSM2 draws them at random).</summary>
    /// <exception cref="KmsPluginException">RootKeyUnavailable when no token has the label; RootKeyDenied when several do.</exception>
    internal static ISlot FindSlot(Pkcs11Module module, string label, string rootKeyName)
    {
        List<ISlot> slots;
        try
        {
            slots = module.Library.GetSlotList(SlotsType.WithTokenPresent);
        }
        catch (Pkcs11Exception e)
        {
            throw Pkcs11ErrorClassifier.ToException(rootKeyName, e, label);
        }

        var matches = new List<ISlot>();
        var present = new List<string>();
        foreach (var slot in slots)
        {
            string tokenLabel;
            try
            {
                // CK_TOKEN_INFO.label is blank-padded to 32 bytes (some vendors pad with NULs).
                tokenLabel = slot.GetTokenInfo().Label.TrimEnd(' ', '\0');
            }
            catch (Pkcs11Exception)
            {
                continue; // a slot whose token cannot be read is not the one we want
            }

            if (tokenLabel.Length > 0)
            {
                present.Add($"'{tokenLabel}'");
            }

            if (string.Equals(tokenLabel, label, StringComparison.Ordinal))
            {
                matches.Add(slot);
            }
        }

        return matches.Count switch
        {
            1 => matches[0],
            0 => throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                $"pkcs11 root key '{rootKeyName}': no token with label '{label}' (option tokenLabel) in {module.Path}; tokens present: {(present.Count == 0 ? "none" : string.Join(", ", present))}"),
            _ => throw new KmsPluginException(KmsErrorKind.RootKeyDenied,
                $"pkcs11 root key '{rootKeyName}': {matches.Count} tokens have label '{label}' (option tokenLabel) in {module.Path}; token labels must be unique"),
        };
    }

    /// <summary>Opens a read-only session (enough for C_Login as CKU_USER, C_Encrypt and C_Decrypt).</summary>
    /// <exception cref="KmsPluginException">RootKeyUnavailable (naming the label) when the token is gone.</exception>
    public ISession OpenSession(string rootKeyName)
    {
        try
        {
            return _slot.OpenSession(SessionType.ReadOnly);
        }
        catch (Pkcs11Exception e) when (e.RV is CKR.CKR_TOKEN_NOT_PRESENT or CKR.CKR_SLOT_ID_INVALID or CKR.CKR_DEVICE_REMOVED
            or CKR.CKR_TOKEN_NOT_RECOGNIZED)
        {
            // The token may be back in another slot: look it up by label once more before giving up.
            lock (_gate)
            {
                _slot = FindSlot(_module, Label, rootKeyName);
            }

            try
            {
                return _slot.OpenSession(SessionType.ReadOnly);
            }
            catch (Pkcs11Exception again)
            {
                throw Pkcs11ErrorClassifier.ToException(rootKeyName, again, Label);
            }
        }
        catch (Pkcs11Exception e)
        {
            throw Pkcs11ErrorClassifier.ToException(rootKeyName, e, Label);
        }
    }

    /// <summary>
    /// Fails at start-up, with a clear message, when the token cannot do <paramref name="mechanism"/> with
    /// C_Encrypt/C_Decrypt (some HSM firmware offers CKM_AES_GCM only for C_WrapKey, or not at all).
    /// </summary>
    public void RequireMechanism(CKM mechanism, string rootKeyName)
    {
        IMechanismInfo info;
        try
        {
            info = _slot.GetMechanismInfo(mechanism);
        }
        catch (Pkcs11Exception e) when (e.RV == CKR.CKR_MECHANISM_INVALID)
        {
            throw Denied(rootKeyName, $"token '{Label}' does not support {mechanism}, which this provider wraps with");
        }
        catch (Pkcs11Exception e)
        {
            throw Pkcs11ErrorClassifier.ToException(rootKeyName, e, Label);
        }

        if (!info.MechanismFlags.Encrypt || !info.MechanismFlags.Decrypt)
        {
            throw Denied(rootKeyName, $"token '{Label}' supports {mechanism} but not with C_Encrypt/C_Decrypt (CKF_ENCRYPT/CKF_DECRYPT)");
        }
    }

    /// <summary>
    /// Makes sure this process is logged in to the token as CKU_USER with the PIN in <paramref name="pinFilePath"/>.
    /// Calls C_Login at most once per distinct PIN (see <see cref="Pkcs11LoginGuard"/>).
    /// </summary>
    /// <exception cref="KmsPluginException">RootKeyDenied for a rejected or conflicting PIN; RootKeyUnavailable otherwise.</exception>
    public void EnsureLoggedIn(string pinFilePath, string rootKeyName)
    {
        using var pin = PinFile.Read(pinFilePath, rootKeyName);
        var digest = Pkcs11LoginGuard.Digest(pin.Bytes);
        lock (_gate)
        {
            if (Pkcs11LoginGuard.TryGetRejection(_module.Path, Label, digest, out var rejection))
            {
                throw Denied(rootKeyName, rejection);
            }

            if (_loggedInPinDigest is not null && AnchorIsLoggedIn())
            {
                if (CryptographicOperations.FixedTimeEquals(_loggedInPinDigest, digest))
                {
                    return;
                }

                throw Denied(rootKeyName,
                    $"pinFile {pinFilePath} holds a different PIN from the one this process is already logged in to token '{Label}' with; a token has one user PIN. The PIN was not tried (the token's retry counter is untouched): fix the file");
            }

            _loggedInPinDigest = null;
            var anchor = _anchor ??= OpenSession(rootKeyName);
            bool alreadyLoggedIn;
            try
            {
                alreadyLoggedIn = Pkcs11Sessions.IsUserSession(anchor);
            }
            catch (Pkcs11Exception e)
            {
                CloseAnchor();
                throw Pkcs11ErrorClassifier.ToException(rootKeyName, e, Label);
            }

            if (alreadyLoggedIn)
            {
                // Other sessions of this process kept the login alive while the anchor was replaced: C_Login would
                // only say CKR_USER_ALREADY_LOGGED_IN, and logging out to check the PIN would break them.
                _loggedInPinDigest = digest;
                return;
            }

            if (Pkcs11LoginGuard.TryGetRecentFailure(_module.Path, Label, out var heldBack))
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"pkcs11 root key '{rootKeyName}': token '{Label}': {heldBack}");
            }

            Pkcs11LoginGuard.RecordAttempt(_module.Path, Label);
            try
            {
                anchor.Login(CKU.CKU_USER, pin.Bytes);
            }
            catch (Pkcs11Exception e) when (e.RV == CKR.CKR_USER_ALREADY_LOGGED_IN)
            {
                // Logged in by code outside this registry (e.g. the host loaded the same module itself): accepted
                // for the same reason as above.
            }
            catch (Pkcs11Exception e) when (Pkcs11ErrorClassifier.IsPinRejected(e.RV))
            {
                var message = $"token '{Label}' rejected the PIN in pinFile {pinFilePath} with {e.RV}. This PIN will not be tried again by this process, so the token does not lock; put the right PIN in the file (or have the SO reset the user PIN and restart the plugin)";
                Pkcs11LoginGuard.RecordRejection(_module.Path, Label, digest, message);
                throw Denied(rootKeyName, message);
            }
            catch (Pkcs11Exception e)
            {
                // Not the PIN's fault (token pulled mid-login, device or network HSM failure): worth another try,
                // but not at the apiserver's request rate.
                Pkcs11LoginGuard.RecordFailure(_module.Path, Label, e.RV);
                if (Pkcs11ErrorClassifier.IsSessionBroken(e.RV))
                {
                    CloseAnchor();
                }

                throw Pkcs11ErrorClassifier.ToException(rootKeyName, e, Label);
            }

            Pkcs11LoginGuard.RecordSuccess(_module.Path, Label);
            _loggedInPinDigest = digest;
        }
    }

    /// <summary>
    /// Null while the slot still holds this token; otherwise what became of it, for error messages (a token that
    /// was pulled answers CKR_TOKEN_NOT_PRESENT; SoftHSM2 answers CKR_GENERAL_ERROR for a deleted one).
    /// </summary>
    internal string? DescribeAbsence()
    {
        try
        {
            var label = _slot.GetTokenInfo().Label.TrimEnd(' ', '\0');
            return label == Label ? null : $"the slot that held token '{Label}' now holds token '{label}'";
        }
        catch (Pkcs11Exception e)
        {
            return $"token '{Label}' no longer answers (C_GetTokenInfo failed: {e.RV})";
        }
    }

    /// <summary>Closes the anchor session; with the root keys' sessions already closed this ends the login.</summary>
    internal void Close()
    {
        lock (_gate)
        {
            CloseAnchor();
            _loggedInPinDigest = null;
        }
    }

    private static KmsPluginException Denied(string rootKeyName, string message) =>
        new(KmsErrorKind.RootKeyDenied, $"pkcs11 root key '{rootKeyName}': {message}");

    private bool AnchorIsLoggedIn()
    {
        if (_anchor is null)
        {
            return false;
        }

        try
        {
            return Pkcs11Sessions.IsUserSession(_anchor);
        }
        catch (Pkcs11Exception)
        {
            // The anchor died with the token or device; a fresh one is opened by the caller.
            CloseAnchor();
            return false;
        }
    }

    private void CloseAnchor()
    {
        var anchor = _anchor;
        _anchor = null;
        Pkcs11Sessions.CloseQuietly(anchor);
    }
}
