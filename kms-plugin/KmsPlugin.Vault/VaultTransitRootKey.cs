using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Vault;

/// <summary>
/// A root key that is one version of a HashiCorp Vault / OpenBao Transit key. KEKs are wrapped with
/// <c>POST /v1/{mount}/encrypt/{key}</c> and unwrapped with <c>POST /v1/{mount}/decrypt/{key}</c> (Vault API docs,
/// Transit secrets engine), with the plugin's associated data in <c>associated_data</c> (AEAD key types only, see
/// <see cref="VaultKeyInfo.AeadTypes"/>) and an explicit <c>key_version</c>.
/// </summary>
/// <remarks>
/// <para>Version and key_id: each instance wraps with one version — the latest one, read from
/// <c>GET /v1/{mount}/keys/{key}</c> at open, or <see cref="VaultTransitRootKeyOptions.KeyVersion"/> when pinned — and that
/// version is part of the identity key_id is derived from (address, namespace, mount, key name, version). Unlike plugins
/// that report Transit's raw version number, the key_id of "version 3 of key k8s on this Vault" can never collide with
/// that of another key. Without a pinned version the key is followed (<see cref="IVersionedRootKey"/>): the background
/// probe reads the latest version (<see cref="ReadLatestVersionAsync"/>) and, once it is confirmed, moves to it with
/// <see cref="WithVersion"/>, which gives a new key_id.</para>
/// <para>Older versions: every wrap records its version (<c>vault:vN:</c>), so <see cref="Recognizes"/> can tell, without a
/// remote call, that a blob presented under "the key_id version N of this key would have" is one of this key's; Unwrap
/// then lets Vault decrypt it with the version in the ciphertext (as long as it is at or above
/// <c>min_decryption_version</c>). One entry therefore reads everything every version of the key wrote.</para>
/// <para>Failures: 403 → the token is replaced once (re-login, or a re-read token file) and the call retried, then
/// RootKeyDenied; 429 → Throttled, retried after Retry-After; 5xx, timeouts and connection failures → RootKeyUnavailable,
/// retried; a ciphertext that fails Vault's authentication → Corruption. See <see cref="VaultErrorClassifier"/>.</para>
/// <para>Thread safety: any number of concurrent calls.</para>
/// </remarks>
public sealed class VaultTransitRootKey : IVersionedRootKey
{
    public const string ProviderName = "vault";

    private readonly VaultTransitRootKeyOptions _options;
    private readonly VaultHttpClient _http;
    private readonly VaultTokenManager _tokens;
    private readonly string _encryptPath;
    private readonly string _decryptPath;
    private readonly string _keyPath;

    // Every instance made by WithVersion shares the HTTP client and the token manager (one login, one renewal timer);
    // they are disposed with the last instance holding them.
    private readonly ReferenceCount _holders;
    private int _disposed;

    private VaultTransitRootKey(VaultTransitRootKeyOptions options, VaultHttpClient http, VaultTokenManager tokens, ReferenceCount holders, int version)
    {
        _options = options;
        _http = http;
        _tokens = tokens;
        _holders = holders;
        Name = options.Name;
        KeyVersion = version;
        KeyId = KeyIdOf(options, version);
        _encryptPath = $"{options.Mount}/encrypt/{options.KeyName}";
        _decryptPath = $"{options.Mount}/decrypt/{options.KeyName}";
        _keyPath = KeyPath(options);
    }

    public string Name { get; }

    public string Provider => ProviderName;

    public string KeyId { get; }

    /// <summary>The Transit key version this root key encrypts with.</summary>
    public int KeyVersion { get; }

    /// <summary>No <c>keyVersion</c> configured: the latest version is followed (see <see cref="IVersionedRootKey"/>).</summary>
    public bool FollowsLatestVersion => _options.KeyVersion is null;

    public string CurrentVersion => KeyVersion.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// <c>address=…;namespace=…;mount=…;key=…;version=N</c>, values percent-encoded. Every node must configure the
    /// same address string for the same Vault (docs/providers/vault.md): the key_id must agree across control-plane nodes.
    /// </summary>
    internal static string Identity(VaultTransitRootKeyOptions options, int version) =>
        string.Join(';',
            "address=" + Uri.EscapeDataString(options.Address.GetLeftPart(UriPartial.Authority).ToLowerInvariant()),
            "namespace=" + Uri.EscapeDataString(options.Namespace?.Trim('/') ?? ""),
            "mount=" + Uri.EscapeDataString(options.Mount),
            "key=" + Uri.EscapeDataString(options.KeyName),
            "version=" + version.ToString(CultureInfo.InvariantCulture));

    private static string KeyIdOf(VaultTransitRootKeyOptions options, int version) => KeyIds.Derive(ProviderName, Identity(options, version));

    private static string KeyPath(VaultTransitRootKeyOptions options) => $"{options.Mount}/keys/{options.KeyName}";

    /// <summary>Synchronous <see cref="OpenAsync"/>, for the provider registry (which opens keys at start-up).</summary>
    public static VaultTransitRootKey Open(VaultTransitRootKeyOptions options) => OpenAsync(options, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>
    /// Logs in and reads the key (type, latest and minimum versions). With <see cref="VaultTransitRootKeyOptions.KeyVersion"/>
    /// pinned, the read is only a check: if Vault is unreachable or throttling, the key opens anyway (the background probe
    /// reports its health), so a decrypt-only entry never blocks start-up during a Vault outage.
    /// </summary>
    /// <exception cref="KmsPluginException">RootKeyDenied: bad options, login or policy refused, unusable key type or version.
    /// RootKeyUnavailable: Vault did not answer and the version is not pinned.</exception>
    public static async Task<VaultTransitRootKey> OpenAsync(VaultTransitRootKeyOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var http = new VaultHttpClient(options);
        var tokens = new VaultTokenManager(options, http);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(options.OpenTimeout);
            int version;
            try
            {
                var info = await CallAsync(options, http, tokens, VaultOperation.ReadKey, HttpMethod.Get, KeyPath(options), null,
                    VaultKeyInfo.Parse, timeout.Token);
                version = info.ChooseVersion(options.KeyVersion, options);
            }
            catch (KmsPluginException e) when (options.KeyVersion is { } pinned && RetryPolicy.IsRetryable(e))
            {
                version = pinned;
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                version = options.KeyVersion ?? throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                    $"vault root key '{options.Name}': could not read {options.Mount}/keys/{options.KeyName} within {options.OpenTimeout.TotalSeconds:0.#}s");
            }

            return new VaultTransitRootKey(options, http, tokens, new ReferenceCount(), version);
        }
        catch
        {
            tokens.Dispose();
            http.Dispose();
            throw;
        }
    }

    public async Task<byte[]> WrapAsync(ReadOnlyMemory<byte> kek, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (kek.IsEmpty)
        {
            throw new ArgumentException("the KEK to wrap must not be empty", nameof(kek));
        }

        using var body = SecretJsonBody.Create(w =>
        {
            w.WriteBase64String("plaintext", kek.Span);
            w.WriteBase64String("associated_data", associatedData.Span);

            // Explicit: a concurrent rotation in Vault must not change which version (and so which key_id) this wrap is under.
            w.WriteNumber("key_version", KeyVersion);
        });
        var ciphertext = await CallAsync(VaultOperation.Encrypt, _encryptPath, body.Memory, response =>
        {
            var data = response.Section("data");
            if (!data.TryGetProperty("ciphertext", out var element) || element.ValueKind != JsonValueKind.String
                || element.GetString() is not { } text || !VaultCiphertext.TryParseVersion(text, out var version) || text.Length > VaultCiphertext.MaxCiphertextChars)
            {
                throw new InvalidDataException("transit encrypt returned no vault:vN: ciphertext");
            }

            if (version != KeyVersion)
            {
                throw new KmsPluginException(KmsErrorKind.Internal,
                    $"vault root key '{Name}': transit encrypted with version {version} although version {KeyVersion} was requested");
            }

            return text;
        }, cancellationToken);
        return VaultCiphertext.Compose(ciphertext);
    }

    public async Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (!VaultCiphertext.TryParse(wrapped.Span, out var ciphertext, out _))
        {
            throw KmsPluginException.Corrupt($"wrapped KEK for root key '{Name}' is not a vault transit blob");
        }

        // Any version of this key: the caller chose this key because Recognizes matched the blob's version to the key_id it
        // was wrapped under, and Vault decrypts with the version the ciphertext names. A blob whose version was edited, or
        // that was moved to another key_id, still fails Vault's AEAD check: the version selects the key, and the associated
        // data names the key_id.

        using var body = SecretJsonBody.Create(w =>
        {
            w.WriteString("ciphertext", ciphertext);
            w.WriteBase64String("associated_data", associatedData.Span);
        });
        return await CallAsync(VaultOperation.Decrypt, _decryptPath, body.Memory, response =>
        {
            var data = response.Section("data");
            if (!data.TryGetProperty("plaintext", out var element) || element.ValueKind != JsonValueKind.String
                || !element.TryGetBytesFromBase64(out var plaintext) || plaintext.Length == 0)
            {
                throw new InvalidDataException("transit decrypt returned no base64 plaintext");
            }

            return SecretBuffer.TakeAndZero(plaintext);
        }, cancellationToken);
    }

    /// <summary>
    /// True when <paramref name="wrapped"/> is a Transit blob of this key whose version's key_id is <paramref name="keyId"/>:
    /// this instance's own version, an older one (written before the key moved on) or a newer one (written by a node that
    /// moved first). Local and bounded: the version is read from the <c>vault:vN:</c> prefix without allocating, and a
    /// key_id is derived only for a well-formed blob presented under a key_id of this provider's shape. Never throws.
    /// </summary>
    public bool Recognizes(string keyId, ReadOnlySpan<byte> wrapped)
    {
        if (keyId is null || keyId.Length != KeyId.Length || !keyId.StartsWith(ProviderName + "-", StringComparison.Ordinal)
            || !VaultCiphertext.TryReadVersion(wrapped, out var version))
        {
            return false;
        }

        return string.Equals(keyId, version == KeyVersion ? KeyId : KeyIdOf(_options, version), StringComparison.Ordinal);
    }

    /// <summary>
    /// Reads the key (<c>GET /v1/{mount}/keys/{key}</c>, the same checks as at open: AEAD type, not derived, encryption
    /// allowed) and returns its <c>latest_version</c>, the version Vault encrypts with by default.
    /// </summary>
    public async Task<string> ReadLatestVersionAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var info = await CallAsync(_options, _http, _tokens, VaultOperation.ReadKey, HttpMethod.Get, _keyPath, null, VaultKeyInfo.Parse, cancellationToken);
        return info.ChooseVersion(null, _options).ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>This key wrapping with Transit version <paramref name="version"/>; shares the HTTP client and the Vault token.</summary>
    /// <exception cref="ArgumentException"><paramref name="version"/> is not a version number of 1 or more.</exception>
    public IVersionedRootKey WithVersion(string version)
    {
        ArgumentNullException.ThrowIfNull(version);
        if (!int.TryParse(version, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number < 1)
        {
            throw new ArgumentException($"vault root key '{Name}': '{version}' is not a transit key version", nameof(version));
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0 || !_holders.TryAcquire(), this);
        return new VaultTransitRootKey(_options, _http, _tokens, _holders, number);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0 && _holders.Release())
        {
            _tokens.Dispose();
            _http.Dispose();
        }
    }

    private Task<T> CallAsync<T>(VaultOperation operation, string path, ReadOnlyMemory<byte> body, Func<VaultResponse, T> parse,
        CancellationToken cancellationToken) =>
        CallAsync(_options, _http, _tokens, operation, HttpMethod.Post, path, body, parse, cancellationToken);

    /// <summary>
    /// One Vault call with the shared retry policy (a 429 waits for Retry-After, or fails at once when Vault asks for
    /// longer than the policy's MaxDelay): gets a token, sends, parses. A 401/403
    /// replaces the token once (Vault answers 403 both for a dead token and for a missing policy) and tries again.
    /// </summary>
    private static Task<T> CallAsync<T>(VaultTransitRootKeyOptions options, VaultHttpClient http, VaultTokenManager tokens, VaultOperation operation,
        HttpMethod method, string path, ReadOnlyMemory<byte>? body, Func<VaultResponse, T> parse, CancellationToken cancellationToken) =>
        RetryAfter.RunAsync(options.Retry, async (_, token) =>
        {
            string vaultToken;
            VaultResponseException denied;
            try
            {
                vaultToken = await tokens.GetTokenAsync(token);
                try
                {
                    return await SendAsync(vaultToken);
                }
                catch (VaultResponseException e) when (e.Status is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized)
                {
                    denied = e;
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                throw; // the caller's deadline: the transport reports DeadlineExceeded
            }
            catch (Exception e)
            {
                throw VaultErrorClassifier.ToException(options.Name, operation, e);
            }

            if (!await ReplaceAsync(vaultToken, denied))
            {
                throw VaultErrorClassifier.ToException(options.Name, operation, denied);
            }

            try
            {
                return await SendAsync(await tokens.GetTokenAsync(token));
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                throw VaultErrorClassifier.ToException(options.Name, operation, e);
            }

            async Task<bool> ReplaceAsync(string denied, VaultResponseException e)
            {
                try
                {
                    return await tokens.ReplaceDeniedAsync(denied, token);
                }
                catch (KmsPluginException login) when (login.Kind == KmsErrorKind.RootKeyDenied)
                {
                    // The login itself was refused: report that (it names the auth role), not the original 403.
                    throw new KmsPluginException(login.Kind, $"{VaultErrorClassifier.ToException(options.Name, operation, e).Message}; logging in again failed: {login.Message}", login);
                }
            }

            async Task<T> SendAsync(string vaultToken)
            {
                using var response = await http.SendAsync(method, path, body, vaultToken, token);
                var result = parse(response);
                tokens.MarkWorking(vaultToken);
                return result;
            }
        }, options.Time, cancellationToken);
}
