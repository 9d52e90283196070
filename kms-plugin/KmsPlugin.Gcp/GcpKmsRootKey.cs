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
/// <c>{cryptoKey}/cryptoKeyVersions/{n}</c>, so a new primary is a new key_id once the key is reopened (the background
/// probe of issue 4 does that). Blobs record their version; Cloud KMS decrypts any enabled version, so KEKs wrapped
/// before a rotation keep unwrapping.</para>
/// <para>Every call runs under the shared <see cref="RetryPolicy"/> on the caller's CancellationToken.</para>
/// </remarks>
public sealed class GcpKmsRootKey : IRootKey
{
    public const string ProviderName = "gcp";

    private readonly GcpKmsRootKeyOptions _options;
    private readonly CloudKmsClient _client;
    private readonly TimeProvider _time;
    private readonly byte[] _header;
    private int _disposed;

    private GcpKmsRootKey(GcpKmsRootKeyOptions options, CloudKmsClient client, TimeProvider time, string version)
    {
        _options = options;
        _client = client;
        _time = time;
        KeyVersion = version;
        _header = GcpWrappedBlob.Header(version);
        KeyVersionName = $"{options.CryptoKey}/cryptoKeyVersions/{version}";

        // The endpoint is not part of the identity: a regional or private endpoint reaches the same key.
        KeyId = KeyIds.Derive(ProviderName, KeyVersionName);
    }

    public string Name => _options.Name;

    public string Provider => ProviderName;

    public string KeyId { get; }

    /// <summary>The CryptoKeyVersion number new KEKs are encrypted under.</summary>
    public string KeyVersion { get; }

    /// <summary>The CryptoKeyVersion resource name the key_id is derived from; not secret, for logs and doctor.</summary>
    public string KeyVersionName { get; }

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
            var what = $"gcp root key '{options.Name}': {options.CryptoKey}";
            if (key.Purpose != "ENCRYPT_DECRYPT")
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{what} has purpose {key.Purpose ?? "(none)"}; a symmetric ENCRYPT_DECRYPT key is required");
            }

            string version;
            if (options.CryptoKeyVersion is { } pinned)
            {
                version = pinned; // its state shows on the first encrypt (FAILED_PRECONDITION when not enabled)
            }
            else
            {
                version = key.PrimaryVersion ?? throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{what} has no primary version");
                if (key.PrimaryState != "ENABLED")
                {
                    throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{what}: primary version {version} is {key.PrimaryState ?? "in an unknown state"}, not ENABLED");
                }
            }

            return new GcpKmsRootKey(options, client, time, version);
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

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _client.Dispose();
        }
    }
}
