using Google.Apis.Auth.OAuth2;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Gcp;

/// <summary>
/// A root key in GCP Cloud KMS (a symmetric ENCRYPT_DECRYPT CryptoKey, software or HSM protection): KEKs are
/// wrapped with <c>cryptoKeyVersions.encrypt</c> and unwrapped with <c>cryptoKeys.decrypt</c>, with the plugin's
/// associated data as Cloud KMS AAD and every CRC32C integrity field checked (<see cref="CloudKmsClient"/>).
/// </summary>
/// <remarks>
/// <para>Versions: the CryptoKey's primary version is read when the key is opened (or a pinned
/// <c>cryptoKeyVersion</c> is used) and every new KEK is encrypted under exactly that version; key_id = hash of
/// <c>{cryptoKey}/cryptoKeyVersions/{n}</c>. Without a pinned version the primary is followed
/// (<see cref="IVersionedRootKey"/>): the background probe reads it (<see cref="ReadLatestVersionAsync"/>) and, once
/// confirmed, moves to it with <see cref="WithVersion"/>, a new key_id. Blobs record their version, Cloud KMS decrypts
/// any enabled version, and <see cref="Recognizes"/> matches a blob's version to the key_id it was wrapped under, so
/// one entry keeps unwrapping KEKs of every version.</para>
/// <para>Every call runs under the shared <see cref="RetryPolicy"/> on the caller's CancellationToken.</para>
/// </remarks>
public sealed class GcpKmsRootKey : IVersionedRootKey
{
    public const string ProviderName = "gcp";

    private readonly GcpKmsRootKeyOptions _options;
    private readonly CloudKmsClient _client;
    private readonly TimeProvider _time;
    private readonly byte[] _header;

    // Instances made by WithVersion share the client (HTTP connections, cached access token); the last one disposes it.
    private readonly ReferenceCount _holders;
    private int _disposed;

    private GcpKmsRootKey(GcpKmsRootKeyOptions options, CloudKmsClient client, ReferenceCount holders, TimeProvider time, string version)
    {
        _options = options;
        _client = client;
        _holders = holders;
        _time = time;
        KeyVersion = version;
        _header = GcpWrappedBlob.Header(version);
        KeyVersionName = VersionName(options, version);
        KeyId = KeyIdOf(options, version);
    }

    public string Name => _options.Name;

    public string Provider => ProviderName;

    public string KeyId { get; }

    /// <summary>The CryptoKeyVersion number new KEKs are encrypted under.</summary>
    public string KeyVersion { get; }

    /// <summary>The CryptoKeyVersion resource name the key_id is derived from; not secret, for logs and doctor.</summary>
    public string KeyVersionName { get; }

    /// <summary>No <c>cryptoKeyVersion</c> configured: the CryptoKey's primary version is followed.</summary>
    public bool FollowsLatestVersion => _options.CryptoKeyVersion is null;

    public string CurrentVersion => KeyVersion;

    /// <summary>Builds the credential and reads the CryptoKey (purpose, primary version and its state).</summary>
    /// <exception cref="KmsPluginException">
    /// RootKeyDenied: bad options or credentials, permission denied, key missing, not ENCRYPT_DECRYPT, primary not
    /// enabled. RootKeyUnavailable / Throttled: Cloud KMS or the token endpoint unreachable after the retries.
    /// </exception>
    public static Task<GcpKmsRootKey> OpenAsync(GcpKmsRootKeyOptions options, CancellationToken cancellationToken) =>
        OpenAsync(options, TimeProvider.System, cancellationToken);

    public static async Task<GcpKmsRootKey> OpenAsync(GcpKmsRootKeyOptions options, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        options.Validate();
        var caBundle = options.CaFile is null ? null : CaBundle.Load(options.CaFile, $"gcp root key '{options.Name}'");
        GoogleCredential credential = await GcpCredentialFactory.CreateAsync(options, caBundle, cancellationToken);
        var client = new CloudKmsClient(options, credential, caBundle, time);
        try
        {
            var key = await RetryAfter.RunAsync(options.Retry, (_, token) => client.GetCryptoKeyAsync(token), time, cancellationToken);

            CheckPurpose(options, key);

            // A pinned version's state shows on the first encrypt (FAILED_PRECONDITION when not enabled).
            var version = options.CryptoKeyVersion ?? EnabledPrimary(options, key);

            return new GcpKmsRootKey(options, client, new ReferenceCount(), time, version);
        }
        catch
        {
            client.Dispose();
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

        var aad = GcpWrappedBlob.AdditionalData(_header, associatedData.Span);
        var result = await RetryAfter.RunAsync(_options.Retry, (_, token) => _client.EncryptAsync(KeyVersion, kek, aad, token), _time, cancellationToken);
        return GcpWrappedBlob.Compose(_header, result.Ciphertext);
    }

    public async Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (!GcpWrappedBlob.TryParse(wrapped.Span, out _, out var headerLength))
        {
            throw KmsPluginException.Corrupt($"wrapped KEK for root key '{Name}' is not a gcp Cloud KMS blob (unknown format or version field)");
        }

        var aad = GcpWrappedBlob.AdditionalData(wrapped.Span[..headerLength], associatedData.Span);
        var ciphertext = wrapped[headerLength..];
        return await RetryAfter.RunAsync(_options.Retry, (_, token) => _client.DecryptAsync(ciphertext, aad, token), _time, cancellationToken);
    }

    /// <summary>
    /// True when <paramref name="wrapped"/> is a gcp blob whose recorded version, as a CryptoKeyVersion of this
    /// CryptoKey, derives <paramref name="keyId"/>: this instance's version or any other version of the same key. Local
    /// and bounded (the header is at most 2 + 19 bytes; a key_id is derived only for a well-formed header presented
    /// under a key_id of this provider's shape). Never throws.
    /// </summary>
    public bool Recognizes(string keyId, ReadOnlySpan<byte> wrapped)
    {
        if (keyId is null || keyId.Length != KeyId.Length || !keyId.StartsWith(ProviderName + "-", StringComparison.Ordinal)
            || !GcpWrappedBlob.TryParse(wrapped, out var version, out _))
        {
            return false;
        }

        return string.Equals(keyId, version == KeyVersion ? KeyId : KeyIdOf(_options, version), StringComparison.Ordinal);
    }

    /// <summary>
    /// Reads the CryptoKey (<c>GET {cryptoKey}</c>) and returns its primary version, checked as open does (purpose
    /// ENCRYPT_DECRYPT, primary ENABLED).
    /// </summary>
    public async Task<string> ReadLatestVersionAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var key = await RetryAfter.RunAsync(_options.Retry, (_, token) => _client.GetCryptoKeyAsync(token), _time, cancellationToken);
        CheckPurpose(_options, key);
        return EnabledPrimary(_options, key);
    }

    /// <summary>This key encrypting under CryptoKeyVersion <paramref name="version"/>; shares the client and its credential.</summary>
    /// <exception cref="ArgumentException"><paramref name="version"/> is not a version number.</exception>
    public IVersionedRootKey WithVersion(string version)
    {
        ArgumentNullException.ThrowIfNull(version);
        if (version.Length is 0 or > 19 || !version.All(char.IsAsciiDigit))
        {
            throw new ArgumentException($"gcp root key '{Name}': '{version}' is not a CryptoKeyVersion number", nameof(version));
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0 || !_holders.TryAcquire(), this);
        return new GcpKmsRootKey(_options, _client, _holders, _time, version);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0 && _holders.Release())
        {
            _client.Dispose();
        }
    }

    private static string VersionName(GcpKmsRootKeyOptions options, string version) => $"{options.CryptoKey}/cryptoKeyVersions/{version}";

    // The endpoint is not part of the identity: a regional or private endpoint reaches the same key.
    private static string KeyIdOf(GcpKmsRootKeyOptions options, string version) => KeyIds.Derive(ProviderName, VersionName(options, version));

    private static void CheckPurpose(GcpKmsRootKeyOptions options, CryptoKeyProperties key)
    {
        if (key.Purpose != "ENCRYPT_DECRYPT")
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied,
                $"gcp root key '{options.Name}': {options.CryptoKey} has purpose {key.Purpose ?? "(none)"}; a symmetric ENCRYPT_DECRYPT key is required");
        }
    }

    /// <summary>The primary version, when there is one and it is enabled.</summary>
    private static string EnabledPrimary(GcpKmsRootKeyOptions options, CryptoKeyProperties key)
    {
        var what = $"gcp root key '{options.Name}': {options.CryptoKey}";
        var version = key.PrimaryVersion ?? throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{what} has no primary version");
        if (key.PrimaryState != "ENABLED")
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{what}: primary version {version} is {key.PrimaryState ?? "in an unknown state"}, not ENABLED");
        }

        return version;
    }
}
