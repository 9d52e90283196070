using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using LowLevelMechanism = Net.Pkcs11Interop.LowLevelAPI80.CK_MECHANISM;

namespace KmsPlugin.Pkcs11;

/// <summary>
/// A root key that is an AES secret key (CKO_SECRET_KEY, CKK_AES) inside a PKCS#11 token — an HSM, or SoftHSM2 in
/// tests. The key never leaves the token: KEKs are wrapped with CKM_AES_GCM through C_Encrypt/C_Decrypt
/// (PKCS#11 v2.40 section 2.11.2; NIST SP 800-38D), blob format in <see cref="Pkcs11WrappedBlob"/>.
/// </summary>
/// <remarks>
/// <para>Construction (<see cref="Open"/>) fails fast: if the module, the token, the PIN or the key is missing or
/// wrong, it throws a <see cref="KmsPluginException"/> naming the option, and the plugin does not start with this
/// key. It does not wait for a token that might appear later — a root key that silently is not there is worse for
/// an operator than a plugin that says why it cannot start.</para>
/// <para>Thread safety: any number of concurrent Wrap/Unwrap calls. Each call rents one session from a bounded pool
/// (sessions are single-operation), so at most <see cref="Pkcs11RootKeyOptions.SessionPoolSize"/> HSM calls run at
/// once and the rest wait — cancellably: the CancellationToken (the apiserver's gRPC deadline) bounds the wait.</para>
/// <para>Login: once per token per process, never retried with a PIN the token rejected (see
/// <see cref="Pkcs11Token"/> and <see cref="Pkcs11LoginGuard"/>). If the login is later lost (every session died,
/// e.g. the token was pulled and re-inserted), the next fresh session logs in again with the PIN file's current
/// content; if that is rejected, this instance stops trying for good and every later call fails fast with the same
/// RootKeyDenied message. A C_Login that fails for any other reason (token pulled mid-login, device error) is not
/// repeated for <see cref="Pkcs11LoginBackoff.DefaultInterval"/>, whatever the request rate.</para>
/// <para>Token removed while serving: calls fail RootKeyUnavailable with a message naming the token and what became
/// of it (<c>CKR_TOKEN_NOT_PRESENT</c>, <c>CKR_DEVICE_REMOVED</c>, or — SoftHSM2 after <c>--delete-token</c> —
/// a key handle that went stale and a key no longer found); a dead session takes the idle ones with it. If the key
/// comes back it is used again only after it decrypts a check value made at open (<see cref="Pkcs11KeyCheck"/>):
/// a different key under the same labels is refused (RootKeyDenied), never used. Modules that enumerate tokens only
/// in C_Initialize (SoftHSM2) need a plugin restart to see a token that comes back; the error says so.</para>
/// </remarks>
public sealed class Pkcs11RootKey : IRootKey
{
    public const string ProviderName = "pkcs11";
    private const int IvBits = Pkcs11WrappedBlob.IvBytes * 8;
    private const int TagBits = Pkcs11WrappedBlob.TagBytes * 8;

    private readonly Pkcs11RootKeyOptions _options;
    private readonly Pkcs11Module _module;
    private readonly Pkcs11Token _token;
    private readonly Pkcs11SessionPool _pool;
    private readonly IRandomSource _random;

    // The key's object handle; null means "look it up again" (after CKR_KEY_HANDLE_INVALID or a re-login).
    private volatile IObjectHandle? _key;

    // Set once at open: proves a key found again later is the same key (see RelocateKey).
    private Pkcs11KeyCheck? _keyCheck;
    private volatile string? _deniedMessage;

    // 1 for the instance itself plus 1 per call in flight: native resources go when it reaches 0, so Dispose
    // during a call never finalises the module under it.
    private readonly ReferenceCount _references = new();
    private int _disposed;
    private long _hsmOperations;

    private Pkcs11RootKey(Pkcs11RootKeyOptions options, string keyId, Pkcs11Module module, Pkcs11Token token, IRandomSource random)
    {
        _options = options;
        _module = module;
        _token = token;
        _random = random;
        Name = options.Name;
        KeyId = keyId;
        _pool = new Pkcs11SessionPool(options.SessionPoolSize, OpenReadySession);
    }

    public string Name { get; }

    public string Provider => ProviderName;

    public string KeyId { get; }

    /// <summary>For tests: C_Encrypt/C_Decrypt operations started, to prove a call never reached the HSM.</summary>
    internal long HsmOperationCount => Interlocked.Read(ref _hsmOperations);

    /// <summary>For tests: the session pool, to fill it with idle sessions and see which ones it keeps.</summary>
    internal Pkcs11SessionPool Sessions => _pool;

    /// <summary>
    /// Loads the module (shared per process), selects the token by label, logs in with the PIN file, checks the
    /// token supports CKM_AES_GCM, and finds exactly one AES key by label and/or CKA_ID.
    /// </summary>
    /// <exception cref="KmsPluginException">
    /// RootKeyUnavailable: module, token or key not found, or the HSM failed. RootKeyDenied: bad options, PIN file
    /// readable by others, PIN rejected, ambiguous key, key not allowed to encrypt/decrypt.
    /// </exception>
    public static Pkcs11RootKey Open(Pkcs11RootKeyOptions options, IRandomSource? random = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var keyId = Pkcs11KeyIdentity.KeyIdFor(options);

        var module = Pkcs11ModuleRegistry.Acquire(options.Library, options.Name);
        Pkcs11Token? token = null;
        try
        {
            token = module.AcquireToken(options.TokenLabel, options.Name);
            token.EnsureLoggedIn(options.PinFile, options.Name);
            token.RequireMechanism(CKM.CKM_AES_GCM, options.Name);
        }
        catch
        {
            if (token is not null)
            {
                module.ReleaseToken(token);
            }

            Pkcs11ModuleRegistry.Release(module);
            throw;
        }

        // From here the instance owns the module and token references; Dispose gives them back.
        var rootKey = new Pkcs11RootKey(options, keyId, module, token, random ?? CsprngRandomSource.Instance);
        try
        {
            rootKey.LocateKeyAtOpen();
            return rootKey;
        }
        catch
        {
            rootKey.Dispose();
            throw;
        }
    }

    public async Task<byte[]> WrapAsync(ReadOnlyMemory<byte> kek, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (kek.IsEmpty)
        {
            throw new ArgumentException("the KEK to wrap must not be empty", nameof(kek));
        }

        // Pkcs11Interop takes byte[]; a pinned copy that is zeroed afterwards leaves no stray copy of the KEK.
        var plaintext = GC.AllocateArray<byte>(kek.Length, pinned: true);
        try
        {
            kek.Span.CopyTo(plaintext);

            // A fresh random 96-bit IV per wrap (SP 800-38D section 8.2.2). Wraps happen once per local KEK, far
            // below the 2^32 invocations per key that section 8.3 allows for random IVs.
            var iv = new byte[Pkcs11WrappedBlob.IvBytes];
            _random.Fill(iv);
            var aad = Pkcs11WrappedBlob.AdditionalData(associatedData.Span);

            return await RunAsync((session, key) =>
            {
                using var parameters = _module.Factories.MechanismParamsFactory.CreateCkGcmParams(iv, IvBits, aad, TagBits);
                using var mechanism = _module.Factories.MechanismFactory.Create(CKM.CKM_AES_GCM, parameters);
                var ciphertextAndTag = session.Encrypt(mechanism, key, plaintext);
                if (ciphertextAndTag.Length != plaintext.Length + Pkcs11WrappedBlob.TagBytes)
                {
                    throw new KmsPluginException(KmsErrorKind.Internal,
                        $"pkcs11 root key '{Name}': CKM_AES_GCM returned {ciphertextAndTag.Length} bytes for {plaintext.Length}; expected ciphertext plus a {Pkcs11WrappedBlob.TagBytes}-byte tag");
                }

                return Pkcs11WrappedBlob.Compose(iv, ciphertextAndTag);
            }, cancellationToken);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    public async Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!Pkcs11WrappedBlob.TryParse(wrapped.Span, out var ivSpan, out var ciphertextSpan))
        {
            throw KmsPluginException.Corrupt($"wrapped KEK for root key '{Name}' is not a pkcs11 AES-GCM blob (too short or unknown format)");
        }

        var iv = ivSpan.ToArray();
        var ciphertextAndTag = ciphertextSpan.ToArray();
        var aad = Pkcs11WrappedBlob.AdditionalData(associatedData.Span);
        return await RunAsync((session, key) => DecryptInto(session, key, iv, aad, ciphertextAndTag), cancellationToken);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            ReleaseReference();
        }
    }

    /// <summary>
    /// C_DecryptInit + C_Decrypt through the low-level API into a pinned buffer that is zeroed afterwards.
    /// </summary>
    /// <remarks>
    /// Not ISession.Decrypt: it sizes its output with a length query, and SoftHSM2 answers that query for
    /// CKM_AES_GCM with the ciphertext length (tag included), so Pkcs11Interop allocates, decrypts, then
    /// Array.Resize-s — leaving an unzeroed copy of the plaintext KEK on the managed heap. Here the output buffer
    /// is the ciphertext length (an upper bound for every token) and is ours to zero.
    /// </remarks>
    private SecretBuffer DecryptInto(ISession session, IObjectHandle key, byte[] iv, byte[] aad, byte[] ciphertextAndTag)
    {
        using var parameters = _module.Factories.MechanismParamsFactory.CreateCkGcmParams(iv, IvBits, aad, TagBits);
        using var mechanism = _module.Factories.MechanismFactory.Create(CKM.CKM_AES_GCM, parameters);
        var ckMechanism = (LowLevelMechanism)mechanism.ToMarshalableStructure();

        var rv = _module.LowLevel.C_DecryptInit(session.SessionId, ref ckMechanism, key.ObjectId);
        if (rv != CKR.CKR_OK)
        {
            throw new Pkcs11Exception("C_DecryptInit", rv);
        }

        var output = GC.AllocateArray<byte>(ciphertextAndTag.Length, pinned: true);
        try
        {
            var outputLength = (ulong)output.Length;
            rv = _module.LowLevel.C_Decrypt(session.SessionId, ciphertextAndTag, (ulong)ciphertextAndTag.Length, output, ref outputLength);
            if (rv != CKR.CKR_OK)
            {
                // A token or session failure is not the data's fault: report it as such (RootKeyUnavailable) so the
                // apiserver retries instead of treating stored data as corrupt. CKR_BUFFER_TOO_SMALL leaves the
                // operation active (v2.40 section 5.2), so that session must go too.
                if (Pkcs11ErrorClassifier.IsSessionBroken(rv) || Pkcs11ErrorClassifier.IsKeyHandleStale(rv) || rv == CKR.CKR_BUFFER_TOO_SMALL)
                {
                    throw new Pkcs11Exception("C_Decrypt", rv);
                }

                // Everything else is a failed authentication. Tokens disagree on the code: SoftHSM2 returns
                // CKR_GENERAL_ERROR for a bad GCM tag, others CKR_ENCRYPTED_DATA_INVALID or (v3.0)
                // CKR_AEAD_DECRYPT_FAILED. The message stays generic on purpose. Any other C_Decrypt error ends the
                // operation (v2.40 section 5.2), so the session is still good.
                throw KmsPluginException.Corrupt($"wrapped KEK failed authentication under root key '{Name}'");
            }

            if (outputLength != (ulong)(ciphertextAndTag.Length - Pkcs11WrappedBlob.TagBytes))
            {
                throw new KmsPluginException(KmsErrorKind.Internal,
                    $"pkcs11 root key '{Name}': CKM_AES_GCM decrypt returned {outputLength} bytes for {ciphertextAndTag.Length}");
            }

            return SecretBuffer.CopyOf(output.AsSpan(0, (int)outputLength));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(output);
        }
    }

    /// <summary>
    /// Runs one HSM operation on a rented session: waits (cancellably) for a session, looks the key up (and checks it
    /// is still the same key) if its handle went stale, and maps PKCS#11 failures to typed errors, dropping the
    /// session — and every idle one with it — when it is broken.
    /// </summary>
    private async Task<T> RunAsync<T>(Func<ISession, IObjectHandle, T> operation, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!TryAddReference())
        {
            throw new ObjectDisposedException(nameof(Pkcs11RootKey), $"pkcs11 root key '{Name}' has been disposed");
        }

        try
        {
            ThrowIfDenied();
            var session = await _pool.RentAsync(cancellationToken);
            var broken = true;
            try
            {
                // The wait may have ended just as the deadline passed: do not start HSM work nobody will read.
                cancellationToken.ThrowIfCancellationRequested();
                var cached = _key;
                var key = cached ?? RelocateKey(session);
                T result;
                try
                {
                    Interlocked.Increment(ref _hsmOperations);
                    result = operation(session, key);
                }
                catch (Pkcs11Exception e) when (cached is not null && Pkcs11ErrorClassifier.IsKeyHandleStale(e.RV))
                {
                    // The handle from an earlier lookup went stale: the key object was re-created, the token
                    // re-inserted, or the token deleted. Look the key up again — once, in this call — so the caller
                    // gets either the result or the error that says what happened to the key.
                    _key = null;
                    key = RelocateKey(session);
                    Interlocked.Increment(ref _hsmOperations);
                    result = operation(session, key);
                }

                broken = false;
                return result;
            }
            catch (Pkcs11Exception e)
            {
                if (Pkcs11ErrorClassifier.IsKeyHandleStale(e.RV))
                {
                    _key = null;
                }

                if (Pkcs11ErrorClassifier.IsSessionBroken(e.RV))
                {
                    _pool.DiscardIdle();
                }

                throw Pkcs11ErrorClassifier.ToException(Name, e, _token.Label);
            }
            catch (KmsPluginException)
            {
                // The operation completed and failed authentication (Corruption), or the key is missing, ambiguous
                // or not the same key any more: the session itself is fine.
                broken = false;
                throw;
            }
            catch (OperationCanceledException)
            {
                broken = false; // cancelled before the session was used
                throw;
            }
            finally
            {
                _pool.Return(session, broken);
            }
        }
        finally
        {
            ReleaseReference();
        }
    }

    private void LocateKeyAtOpen()
    {
        var session = _pool.Rent();
        var broken = true;
        try
        {
            var key = FindKey(session, atOpen: true);
            _keyCheck = Pkcs11KeyCheck.Create(session, key, _module.Factories);
            _key = key;
            broken = false;
        }
        catch (Pkcs11Exception e)
        {
            throw Pkcs11ErrorClassifier.ToException(Name, e, _token.Label);
        }
        catch (KmsPluginException)
        {
            broken = false; // the key is missing or unusable; the session is fine
            throw;
        }
        finally
        {
            _pool.Return(session, broken);
        }
    }

    /// <summary>
    /// Finds the key again after its handle was dropped (stale handle, re-login) and makes sure it is the key found
    /// at open: a key regenerated under the same label and id is a different key behind the same key_id, and must
    /// not wrap anything.
    /// </summary>
    private IObjectHandle RelocateKey(ISession session)
    {
        var key = FindKey(session, atOpen: false);
        if (!_keyCheck!.Matches((iv, aad, ciphertext) => DecryptInto(session, key, iv, aad, ciphertext)))
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied,
                $"pkcs11 root key '{Name}': the AES key now found with {DescribeKeySelector()} on token '{_token.Label}' is not the key this plugin opened (it cannot decrypt a check value wrapped with that key at start): the key was regenerated, or the token re-initialised, under the same labels. Nothing is wrapped or unwrapped with it, since it would carry the old key's key_id. Restore the original key and restart the plugin, or configure the new key under a new keyLabel/keyId as a new root key");
        }

        _key = key;
        return key;
    }

    /// <summary>Finds exactly one AES secret key matching the configured CKA_LABEL and/or CKA_ID, usable for encrypt and decrypt.</summary>
    private IObjectHandle FindKey(ISession session, bool atOpen)
    {
        var attributes = _module.Factories.ObjectAttributeFactory;
        var template = new List<IObjectAttribute>
        {
            attributes.Create(CKA.CKA_CLASS, CKO.CKO_SECRET_KEY),
            attributes.Create(CKA.CKA_KEY_TYPE, CKK.CKK_AES),
        };
        if (!string.IsNullOrEmpty(_options.KeyLabel))
        {
            template.Add(attributes.Create(CKA.CKA_LABEL, _options.KeyLabel));
        }

        var id = _options.KeyIdBytes();
        if (id is not null)
        {
            template.Add(attributes.Create(CKA.CKA_ID, id));
        }

        List<IObjectHandle> found;
        try
        {
            found = session.FindAllObjects(template);
        }
        finally
        {
            foreach (var attribute in template)
            {
                attribute.Dispose();
            }
        }

        if (found.Count == 0)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable, atOpen
                ? $"pkcs11 root key '{Name}': no AES secret key with {DescribeKeySelector()} on token '{_token.Label}' (options keyLabel/keyId); check the label and id, and that the token's user can see the key"
                : DescribeLostKey());
        }

        if (found.Count > 1)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied,
                $"pkcs11 root key '{Name}': {found.Count} AES secret keys match {DescribeKeySelector()} on token '{_token.Label}'; set keyId (CKA_ID) as well so exactly one matches");
        }

        var key = found[0];
        var usage = session.GetAttributeValue(key, [CKA.CKA_ENCRYPT, CKA.CKA_DECRYPT]);
        try
        {
            if (!usage[0].GetValueAsBool() || !usage[1].GetValueAsBool())
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyDenied,
                    $"pkcs11 root key '{Name}': the AES key with {DescribeKeySelector()} on token '{_token.Label}' does not allow both CKA_ENCRYPT and CKA_DECRYPT");
            }
        }
        finally
        {
            foreach (var attribute in usage)
            {
                attribute.Dispose();
            }
        }

        return key;
    }

    /// <summary>The key was there at open and is not now: say whether the token went with it, and what to do.</summary>
    private string DescribeLostKey()
    {
        var absence = _token.DescribeAbsence();
        return absence is null
            ? $"pkcs11 root key '{Name}': the AES key with {DescribeKeySelector()} is no longer on token '{_token.Label}' (deleted, or the token was re-initialised). Only KEKs already in memory work; data wrapped by the key cannot be read without it: restore it from the HSM's backup (the plugin finds it again on the next call)"
            : $"pkcs11 root key '{Name}': the AES key with {DescribeKeySelector()} is gone because {absence}: the token was removed, deleted or re-initialised. Only KEKs already in memory work until it is back. PKCS#11 modules that list tokens only when they are loaded (SoftHSM2 among them) do not see a token that comes back: restart the plugin once the token, with this key, is back";
    }

    private string DescribeKeySelector()
    {
        var id = _options.NormalizedKeyId();
        return (string.IsNullOrEmpty(_options.KeyLabel), id is null) switch
        {
            (false, true) => $"label '{_options.KeyLabel}'",
            (true, false) => $"CKA_ID {id}",
            _ => $"label '{_options.KeyLabel}' and CKA_ID {id}",
        };
    }

    /// <summary>The pool's session factory: a fresh read-only session, logged in (again, if the login was lost).</summary>
    private ISession OpenReadySession()
    {
        var session = _token.OpenSession(Name);
        try
        {
            if (!Pkcs11Sessions.IsUserSession(session))
            {
                // Every session of the process on this token was closed (device error, token re-inserted), which
                // ends the login (v2.40 section 5.6). Log in again — unless this instance was already refused once.
                ThrowIfDenied();
                try
                {
                    _token.EnsureLoggedIn(_options.PinFile, Name);
                }
                catch (KmsPluginException e) when (e.Kind == KmsErrorKind.RootKeyDenied)
                {
                    _deniedMessage = e.Message;
                    throw;
                }

                _key = null; // handles may not survive a re-insertion; RelocateKey checks it is still the same key
            }

            return session;
        }
        catch (Pkcs11Exception e)
        {
            Pkcs11Sessions.CloseQuietly(session);
            throw Pkcs11ErrorClassifier.ToException(Name, e, _token.Label);
        }
        catch
        {
            Pkcs11Sessions.CloseQuietly(session);
            throw;
        }
    }

    private void ThrowIfDenied()
    {
        var denied = _deniedMessage;
        if (denied is not null)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied, denied);
        }
    }

    private bool TryAddReference() => _references.TryAcquire();

    private void ReleaseReference()
    {
        if (_references.Release())
        {
            // Sessions first, then the token's anchor (ending the login if no one else uses the token), then the
            // module (C_Finalize if this was its last user).
            _pool.Dispose();
            _module.ReleaseToken(_token);
            Pkcs11ModuleRegistry.Release(_module);
        }
    }
}
