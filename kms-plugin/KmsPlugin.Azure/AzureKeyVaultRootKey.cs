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
/// key's newest version when the key is opened, and that version wraps every new KEK until the key is reopened (the
/// background probe of issue 4 reopens it to follow a rotation). key_id = hash of
/// <c>https://{vault}/keys/{name}/{version}</c>, so a new version is a new key_id. Each blob records its version and
/// is unwrapped by it, so KEKs wrapped before a rotation keep unwrapping as long as their version is enabled.</para>
/// <para>Open checks the key exists, is enabled, allows wrapKey/unwrapKey and fits the algorithm (needs the
/// <c>keys/read</c> permission besides wrap and unwrap), so a misconfiguration stops the plugin at start with a reason.</para>
/// <para>Every call runs under the shared <see cref="RetryPolicy"/> (throttling and transient failures only, waits
/// honour Retry-After up to the policy's MaxDelay, all on the caller's CancellationToken — the apiserver's deadline).</para>
/// </remarks>
public sealed class AzureKeyVaultRootKey : IRootKey
{
    public const string ProviderName = "azure";

    private readonly AzureKeyVaultRootKeyOptions _options;
    private readonly KeyVaultClient _client;
    private readonly TimeProvider _time;
    private readonly string _version;
    private readonly byte[] _header;
    private int _disposed;

    private AzureKeyVaultRootKey(AzureKeyVaultRootKeyOptions options, KeyVaultClient client, TimeProvider time, string version)
    {
        _options = options;
        _client = client;
        _time = time;
        _version = version;
        _header = AzureWrappedBlob.Header(options.Algorithm, version);
        KeyIdentifier = KeyVaultKeyIdentifier.Format(options.NormalizedVault, options.KeyName, version);
        KeyId = KeyIds.Derive(ProviderName, KeyIdentifier);
    }

    public string Name => _options.Name;

    public string Provider => ProviderName;

    public string KeyId { get; }

    /// <summary>The key version new KEKs are wrapped with (the pinned one, or the newest at open).</summary>
    public string KeyVersion => _version;

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
            return new AzureKeyVaultRootKey(options, client, time, key.Version);
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

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _client.Dispose();
        }
    }

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
