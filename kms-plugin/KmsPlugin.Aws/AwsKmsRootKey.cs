using System.Security.Cryptography;
using Amazon.KeyManagementService;
using Amazon.KeyManagementService.Model;
using Amazon.Runtime;
using RetryPolicy = KmsPlugin.Core.RootKeys.RetryPolicy;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Aws;

/// <summary>
/// A root key that is an AWS KMS symmetric key (SYMMETRIC_DEFAULT, key usage ENCRYPT_DECRYPT). KEKs are wrapped with
/// KMS Encrypt and unwrapped with Decrypt, both with an encryption context that binds the plugin's associated data
/// (<see cref="AwsEncryptionContext"/>); Decrypt names the key, so a blob is only ever decrypted with this key.
/// </summary>
/// <remarks>
/// <para>Identity: the key ARN (an alias or key id is resolved once, at open, with DescribeKey, so re-pointing an alias
/// never silently changes the key behind a key_id) plus the operator's extra encryption context (which blobs depend on).
/// AWS automatic and on-demand rotation of a symmetric key is invisible to callers — the ARN stays, old backing keys
/// keep decrypting — so key_id stays the same across it, as it should: nothing needs re-encrypting.</para>
/// <para>Failures: the SDK's own retries are off; <see cref="RetryPolicy"/> retries throttling and transient failures
/// on the caller's token (the gRPC deadline), and every SDK call gets that token. See <see cref="AwsErrorClassifier"/>
/// for the classification.</para>
/// <para>Thread safety: any number of concurrent calls (the SDK client is thread-safe).</para>
/// </remarks>
public sealed class AwsKmsRootKey : IRootKey
{
    public const string ProviderName = "aws";

    private readonly AwsKmsRootKeyOptions _options;
    private readonly AmazonKeyManagementServiceClient _client;
    private readonly AWSCredentials? _ownedCredentials;
    private int _disposed;

    private AwsKmsRootKey(AwsKmsRootKeyOptions options, AmazonKeyManagementServiceClient client, AWSCredentials? ownedCredentials, string keyArn)
    {
        _options = options;
        _client = client;
        _ownedCredentials = ownedCredentials;
        Name = options.Name;
        KeyArn = keyArn;
        KeyId = KeyIds.Derive(ProviderName, Identity(keyArn, options.EncryptionContext));
    }

    public string Name { get; }

    public string Provider => ProviderName;

    public string KeyId { get; }

    /// <summary>The key ARN every Encrypt and Decrypt names (the configured one, or what the alias pointed to at open).</summary>
    public string KeyArn { get; }

    /// <summary>
    /// The provider identity key_id is derived from: <c>arn=ARN</c>, plus <c>;context=k=v&amp;…</c> when extra
    /// encryption context is configured (blobs made with one context do not decrypt with another, so they are different
    /// keys as far as the apiserver is concerned). The endpoint, region and credentials are not part of it: every node
    /// must report the same key_id whichever endpoint it reaches the key through.
    /// </summary>
    internal static string Identity(string keyArn, IReadOnlyDictionary<string, string> encryptionContext)
    {
        var context = AwsEncryptionContext.Canonical(encryptionContext);
        return context.Length == 0 ? "arn=" + keyArn : $"arn={keyArn};context={context}";
    }

    /// <summary>Synchronous <see cref="OpenAsync"/>, for the provider registry (which opens keys at start-up).</summary>
    public static AwsKmsRootKey Open(AwsKmsRootKeyOptions options) => OpenAsync(options, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>
    /// Builds the client and resolves the key. With an alias or key id, DescribeKey must succeed (within
    /// <see cref="AwsKmsRootKeyOptions.OpenTimeout"/>). With a key ARN, DescribeKey only checks the key when it can: if
    /// KMS is unreachable, throttling, or the role may not call DescribeKey, the key still opens (the background probe
    /// reports its health), so a plugin configured by ARN starts during a KMS outage.
    /// </summary>
    /// <exception cref="KmsPluginException">RootKeyDenied: bad options, key not found, not a symmetric encryption key.
    /// RootKeyUnavailable: an alias could not be resolved because KMS did not answer.</exception>
    public static async Task<AwsKmsRootKey> OpenAsync(AwsKmsRootKeyOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (!AwsKeyReference.TryParse(options.KeyId, out var reference, out var problem))
        {
            throw options.Invalid("keyId", problem); // unreachable after Validate; keeps the analyzer and the reader sure
        }

        var (client, owned) = AwsKmsClientFactory.Create(options);
        try
        {
            var arn = await ResolveKeyArnAsync(options, reference, client, cancellationToken);
            return new AwsKmsRootKey(options, client, owned, arn);
        }
        catch
        {
            client.Dispose();
            (owned as IDisposable)?.Dispose();
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

        // The SDK reads the plaintext from a MemoryStream; a pinned copy that is zeroed afterwards leaves no stray copy
        // of the KEK on the managed heap other than the SDK's request body.
        var plaintext = GC.AllocateArray<byte>(kek.Length, pinned: true);
        try
        {
            kek.Span.CopyTo(plaintext);
            var context = AwsEncryptionContext.For(_options.EncryptionContext, associatedData.Span);
            var response = await CallAsync("Encrypt", token => _client.EncryptAsync(new EncryptRequest
            {
                KeyId = KeyArn,
                Plaintext = new MemoryStream(plaintext, writable: false), // fresh per attempt: a retry reads it again
                EncryptionContext = context,
                EncryptionAlgorithm = EncryptionAlgorithmSpec.SYMMETRIC_DEFAULT,
            }, token), cancellationToken);

            using var ciphertext = response.CiphertextBlob;
            if (ciphertext is null || ciphertext.Length == 0 || ciphertext.Length > AwsWrappedBlob.MaxCiphertextBytes)
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                    $"aws root key '{Name}': Encrypt returned {(ciphertext is null ? "no" : $"a {ciphertext.Length}-byte")} CiphertextBlob");
            }

            if (response.KeyId is { } usedKey && !string.Equals(usedKey, KeyArn, StringComparison.Ordinal))
            {
                throw new KmsPluginException(KmsErrorKind.Internal,
                    $"aws root key '{Name}': KMS encrypted under {usedKey}, not the configured {KeyArn}");
            }

            return AwsWrappedBlob.Compose(ciphertext.ToArray());
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
        if (!AwsWrappedBlob.TryParse(wrapped.Span, out var blobSpan))
        {
            throw KmsPluginException.Corrupt($"wrapped KEK for root key '{Name}' is not an aws KMS blob (empty, too large or unknown format)");
        }

        var ciphertextBlob = blobSpan.ToArray();
        var context = AwsEncryptionContext.For(_options.EncryptionContext, associatedData.Span);
        var response = await CallAsync("Decrypt", token => _client.DecryptAsync(new DecryptRequest
        {
            CiphertextBlob = new MemoryStream(ciphertextBlob, writable: false),

            // Naming the key makes KMS refuse a blob made under any other key (IncorrectKeyException), instead of
            // decrypting with whatever key the blob names (KMS API reference, Decrypt: KeyId).
            KeyId = KeyArn,
            EncryptionContext = context,
            EncryptionAlgorithm = EncryptionAlgorithmSpec.SYMMETRIC_DEFAULT,
        }, token), cancellationToken);

        using var plaintext = response.Plaintext;
        if (plaintext is null || plaintext.Length == 0)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"aws root key '{Name}': Decrypt returned no Plaintext");
        }

        var bytes = plaintext.ToArray();
        ZeroStream(plaintext);
        var secret = SecretBuffer.TakeAndZero(bytes);
        if (response.KeyId is { } usedKey && !string.Equals(usedKey, KeyArn, StringComparison.Ordinal))
        {
            secret.Dispose();
            throw KmsPluginException.Corrupt($"aws root key '{Name}': KMS decrypted with {usedKey}, not the configured {KeyArn}");
        }

        return secret;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _client.Dispose();
            (_ownedCredentials as IDisposable)?.Dispose();
        }
    }

    private Task<T> CallAsync<T>(string operation, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken) =>
        CallAsync(_options, operation, call, cancellationToken);

    private static Task<T> CallAsync<T>(AwsKmsRootKeyOptions options, string operation, Func<CancellationToken, Task<T>> call,
        CancellationToken cancellationToken) =>
        options.Retry.RunAsync(async (_, token) =>
        {
            // Each attempt is bounded here, on a token of ours, not only by the SDK's Timeout: on a timeout of its own
            // the SDK now and then sends the request a second time within the same call, MaxErrorRetry = 0 or not
            // (seen with AWSSDK 4.x against the loopback fake: one attempt, two Encrypt requests, twice requestTimeout),
            // whereas a call its caller cancelled is never re-sent. So an attempt is one request of at most requestTimeout.
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(token);
            attempt.CancelAfter(options.RequestTimeout);
            try
            {
                return await call(attempt.Token);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                throw; // the caller's deadline, not a KMS failure: the transport reports DeadlineExceeded
            }
            catch (Exception e)
            {
                // Our attempt timeout included: the classifier reports a cancellation that is not the caller's as a
                // timeout (RootKeyUnavailable, "timed out (requestTimeout)").
                throw AwsErrorClassifier.ToException(options.Name, operation, e);
            }
        }, options.Time, cancellationToken);

    private static async Task<string> ResolveKeyArnAsync(AwsKmsRootKeyOptions options, AwsKeyReference reference,
        AmazonKeyManagementServiceClient client, CancellationToken cancellationToken)
    {
        var byArn = reference.Kind == AwsKeyReferenceKind.KeyArn;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.OpenTimeout);
        KeyMetadata? metadata;
        try
        {
            var response = await CallAsync(options, "DescribeKey",
                token => client.DescribeKeyAsync(new DescribeKeyRequest { KeyId = options.KeyId }, token), timeout.Token);
            metadata = response.KeyMetadata;
        }
        catch (KmsPluginException e) when (byArn && (RetryPolicy.IsRetryable(e) || IsAccessDenied(e)))
        {
            // The ARN already names the key; DescribeKey was only a check (and least-privilege roles may not have it).
            return options.KeyId;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            if (byArn)
            {
                return options.KeyId;
            }

            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                $"aws root key '{options.Name}': DescribeKey did not resolve {options.KeyId} within {options.OpenTimeout.TotalSeconds:0.#}s; configure the key ARN to start without KMS");
        }

        if (metadata is null || string.IsNullOrEmpty(metadata.Arn) || !AwsKeyReference.TryParse(metadata.Arn, out var resolved, out _)
            || resolved.Kind != AwsKeyReferenceKind.KeyArn)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                $"aws root key '{options.Name}': DescribeKey for {options.KeyId} returned no usable key ARN");
        }

        if (byArn && !string.Equals(metadata.Arn, options.KeyId, StringComparison.Ordinal))
        {
            throw options.Invalid("keyId", $"is {options.KeyId} but KMS describes it as {metadata.Arn}");
        }

        // SDK v4 leaves unset enum/collection members null (AWSConfigs.InitializeCollections is off by default and we
        // do not flip that process-wide switch), so each check below only fires on a value KMS actually sent.
        if (metadata.KeySpec is { } spec && spec != KeySpec.SYMMETRIC_DEFAULT)
        {
            throw options.Invalid("keyId", $"{metadata.Arn} has key spec {spec.Value}; the plugin needs a symmetric encryption key (SYMMETRIC_DEFAULT)");
        }

        if (metadata.KeyUsage is { } usage && usage != KeyUsageType.ENCRYPT_DECRYPT)
        {
            throw options.Invalid("keyId", $"{metadata.Arn} has key usage {usage.Value}; the plugin needs ENCRYPT_DECRYPT");
        }

        // A disabled or pending-deletion key is not refused here: as a decrypt-only entry it must not stop the plugin
        // from starting, and as the primary its Encrypt fails with DisabledException / KMSInvalidStateException, which
        // Status reports. The region check below catches a client pointed at the wrong region.
        var region = options.EffectiveRegion();
        if (region is not null && resolved.Region is { } keyRegion && !string.Equals(region, keyRegion, StringComparison.Ordinal))
        {
            throw options.Invalid("region", $"is {region} but {options.KeyId} resolved to {metadata.Arn} in {keyRegion}");
        }

        return metadata.Arn;
    }

    private static bool IsAccessDenied(KmsPluginException e) =>
        e.InnerException is AmazonServiceException { ErrorCode: "AccessDeniedException" or "AccessDenied" };

    /// <summary>Overwrites the SDK's decoded plaintext inside the response stream (it is a writable MemoryStream over its own array).</summary>
    private static void ZeroStream(MemoryStream stream)
    {
        if (stream.TryGetBuffer(out var buffer))
        {
            CryptographicOperations.ZeroMemory(buffer.AsSpan());
            return;
        }

        if (stream.CanWrite && stream.CanSeek)
        {
            var length = (int)stream.Length;
            stream.Position = 0;
            stream.Write(new byte[length]);
        }
    }
}
