using System.Security.Cryptography;
using Azure.Core;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Azure;

/// <summary>
/// A root key in Azure Key Vault (RSA key, RSA-OAEP-256) or Managed HSM (AES-256 key, A256KW): KEKs are wrapped and
/// unwrapped by the vault's <c>wrapkey</c>/<c>unwrapkey</c> operations, the key never leaves it.
/// Blob format and associated-data binding: <see cref="AzureWrappedBlob"/>.
/// </summary>
/// <remarks>
/// <para>Versions: a pinned <c>keyVersion</c> is used as configured; a versionless configuration is resolved to the
/// key's newest version when the key is opened, and is followed (<see cref="IVersionedRootKey"/>): the background probe
/// reads the newest version (<see cref="ReadLatestVersionAsync"/>) and, once confirmed, moves to it with
/// <see cref="WithVersion"/>. key_id = hash of <c>https://{vault}/keys/{name}/{version}</c>, so a new version is a new
/// key_id. Each blob records its version and is unwrapped by it, and <see cref="Recognizes"/> matches a blob's version
/// to the key_id it was wrapped under, so one entry keeps unwrapping KEKs of every version as long as it is enabled.</para>
/// <para>Open checks the key exists, is enabled, allows wrapKey/unwrapKey and fits the algorithm (needs the
/// <c>keys/read</c> permission besides wrap and unwrap), so a misconfiguration stops the plugin at start with a reason.</para>
/// <para>Every call runs under the shared <see cref="RetryPolicy"/> (throttling and transient failures only, waits
/// honour Retry-After up to the policy's MaxDelay, all on the caller's CancellationToken — the apiserver's deadline).</para>
/// </remarks>
public sealed class AzureKeyVaultRootKey : IVersionedRootKey
{
    public const string ProviderName = "azure";

    private readonly AzureKeyVaultRootKeyOptions _options;
    private readonly KeyVaultClient _client;
    private readonly TimeProvider _time;
    private readonly string _version;
    private readonly byte[] _header;

    // Instances made by WithVersion share the client (its HTTP pipeline and cached Entra ID token); the last one disposes it.
    private readonly ReferenceCount _holders;
    private int _disposed;

    private AzureKeyVaultRootKey(AzureKeyVaultRootKeyOptions options, KeyVaultClient client, ReferenceCount holders, TimeProvider time, string version)
    {
        _options = options;
        _client = client;
        _holders = holders;
        _time = time;
        _version = version;
        _header = AzureWrappedBlob.Header(options.Algorithm, version);
        KeyIdentifier = KeyVaultKeyIdentifier.Format(options.NormalizedVault, options.KeyName, version);
        KeyId = KeyIdOf(options, version);
    }

    public string Name => _options.Name;

    public string Provider => ProviderName;

    public string KeyId { get; }

    /// <summary>The key version new KEKs are wrapped with (the pinned one, the newest at open, or the one moved to).</summary>
    public string KeyVersion => _version;

    /// <summary>No <c>keyVersion</c> configured: the key's newest version is followed.</summary>
    public bool FollowsLatestVersion => _options.KeyVersion is null;

    public string CurrentVersion => _version;

    /// <summary>The Key Vault key identifier (<c>kid</c>) the key_id is derived from; not secret, for logs and doctor.</summary>
    public string KeyIdentifier { get; }

    /// <summary>
    /// Builds the credential, reads the key (resolving a versionless key to its newest version) and checks it can wrap
    /// with the configured algorithm.
    /// </summary>
    /// <exception cref="KmsPluginException">
    /// RootKeyDenied: bad options, credential refused, key missing, disabled, or unfit. RootKeyUnavailable / Throttled:
    /// the vault or Entra ID could not be reached after the retries.
    /// </exception>
    public static Task<AzureKeyVaultRootKey> OpenAsync(AzureKeyVaultRootKeyOptions options, CancellationToken cancellationToken) =>
        OpenAsync(options, TimeProvider.System, cancellationToken);

    public static async Task<AzureKeyVaultRootKey> OpenAsync(AzureKeyVaultRootKeyOptions options, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        options.Validate();
        var caBundle = options.CaFile is null ? null : CaBundle.Load(options.CaFile, $"azure root key '{options.Name}'");
        TokenCredential credential = AzureCredentialFactory.Create(options, caBundle);
        var client = new KeyVaultClient(options, credential, caBundle, time);
        try
        {
            var key = await RetryAfter.RunAsync(options.Retry, (_, token) => client.GetKeyAsync(options.KeyVersion, token), time, cancellationToken);
            CheckUsable(options, key);
            return new AzureKeyVaultRootKey(options, client, new ReferenceCount(), time, key.Version);
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
        if (kek.IsEmpty || !KeyVaultAlgorithms.AcceptsLength(_options.Algorithm, AzureWrappedBlob.DigestBytes + kek.Length))
        {
            throw new ArgumentException($"a KEK of {kek.Length} bytes cannot be wrapped with {_options.Algorithm}", nameof(kek));
        }

        // digest ‖ KEK in a pinned buffer that is zeroed after the call.
        var plaintext = GC.AllocateArray<byte>(AzureWrappedBlob.DigestBytes + kek.Length, pinned: true);
        try
        {
            kek.Span.CopyTo(plaintext.AsSpan(AzureWrappedBlob.DigestBytes));
            AzureWrappedBlob.Digest(_header, associatedData.Span, kek.Span, plaintext.AsSpan(0, AzureWrappedBlob.DigestBytes));
            var wrapped = await RetryAfter.RunAsync(_options.Retry,
                (_, token) => _client.WrapAsync(_version, _options.Algorithm, plaintext, token), _time, cancellationToken);
            return AzureWrappedBlob.Compose(_header, wrapped);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    public async Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (!AzureWrappedBlob.TryParse(wrapped.Span, out var algorithm, out var version, out var headerLength))
        {
            throw KmsPluginException.Corrupt($"wrapped KEK for root key '{Name}' is not an azure key-vault blob (unknown format, algorithm or version field)");
        }

        // The call goes to the version recorded in the blob, so blobs wrapped before a rotation unwrap with their own
        // version. The digest is inside the wrap, so it can only be checked once the vault has opened it.
        var header = wrapped[..headerLength];
        var ciphertext = wrapped[headerLength..];
        using var plaintext = await RetryAfter.RunAsync(_options.Retry,
            (_, token) => _client.UnwrapAsync(version, algorithm, ciphertext, token), _time, cancellationToken);

        var expected = new byte[AzureWrappedBlob.DigestBytes];
        if (plaintext.Length > AzureWrappedBlob.DigestBytes)
        {
            AzureWrappedBlob.Digest(header.Span, associatedData.Span, plaintext.Span[AzureWrappedBlob.DigestBytes..], expected);
        }

        if (plaintext.Length <= AzureWrappedBlob.DigestBytes
            || !CryptographicOperations.FixedTimeEquals(plaintext.Span[..AzureWrappedBlob.DigestBytes], expected))
        {
            throw KmsPluginException.Corrupt(
                $"azure root key '{Name}': the unwrapped KEK does not belong to this key_id or was altered (digest mismatch)");
        }

        return SecretBuffer.CopyOf(plaintext.Span[AzureWrappedBlob.DigestBytes..]);
    }

    /// <summary>
    /// True when <paramref name="wrapped"/> is an azure blob whose recorded version, as a key identifier of this vault
    /// and key, derives <paramref name="keyId"/>: this instance's version or any other version of the same key. Local
    /// and bounded (the header is at most 3 + 255 bytes; a key_id is derived only for a well-formed header presented
    /// under a key_id of this provider's shape). Never throws.
    /// </summary>
    public bool Recognizes(string keyId, ReadOnlySpan<byte> wrapped)
    {
        if (keyId is null || keyId.Length != KeyId.Length || !keyId.StartsWith(ProviderName + "-", StringComparison.Ordinal)
            || !AzureWrappedBlob.TryParse(wrapped, out _, out var version, out _))
        {
            return false;
        }

        return string.Equals(keyId, version == _version ? KeyId : KeyIdOf(_options, version), StringComparison.Ordinal);
    }

    /// <summary>
    /// Reads the key without a version (<c>GET keys/{name}</c>: its newest version) and checks it as open does
    /// (enabled, fits the algorithm, permits wrapKey/unwrapKey); returns that version.
    /// </summary>
    public async Task<string> ReadLatestVersionAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var key = await RetryAfter.RunAsync(_options.Retry, (_, token) => _client.GetKeyAsync(null, token), _time, cancellationToken);
        CheckUsable(_options, key);
        return key.Version;
    }

    /// <summary>This key wrapping with <paramref name="version"/>; shares the client and its credential.</summary>
    /// <exception cref="ArgumentException"><paramref name="version"/> is not a Key Vault key version.</exception>
    public IVersionedRootKey WithVersion(string version)
    {
        ArgumentNullException.ThrowIfNull(version);
        if (!KeyVaultKeyIdentifier.IsValidVersion(version))
        {
            throw new ArgumentException($"azure root key '{Name}': '{version}' is not a key version", nameof(version));
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0 || !_holders.TryAcquire(), this);
        return new AzureKeyVaultRootKey(_options, _client, _holders, _time, version);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0 && _holders.Release())
        {
            _client.Dispose();
        }
    }

    private static string KeyIdOf(AzureKeyVaultRootKeyOptions options, string version) =>
        KeyIds.Derive(ProviderName, KeyVaultKeyIdentifier.Format(options.NormalizedVault, options.KeyName, version));

    private static void CheckUsable(AzureKeyVaultRootKeyOptions options, KeyVaultKeyProperties key)
    {
        var what = $"azure root key '{options.Name}': key {options.KeyName} version {key.Version}";
        if (!key.Enabled)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{what} is disabled");
        }

        if (!KeyVaultAlgorithms.Fits(options.Algorithm, key.KeyType))
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied,
                $"{what} is of type {key.KeyType}, which cannot do {options.Algorithm} (RSA keys: RSA-OAEP-256; Managed HSM AES keys: A256KW)");
        }

        if (key.Operations is { } operations && (!operations.Contains("wrapKey") || !operations.Contains("unwrapKey")))
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied,
                $"{what} does not permit wrapKey and unwrapKey (key_ops: {string.Join(", ", operations)})");
        }
    }
}
