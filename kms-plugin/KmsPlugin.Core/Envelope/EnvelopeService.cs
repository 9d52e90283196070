using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.Protocol;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using Microsoft.Extensions.Logging;

namespace KmsPlugin.Core.Envelope;

/// <summary>
/// The local KEK hierarchy (DESIGN.md section 2). Encrypt seals the apiserver's seed with the current local KEK;
/// the KEK travels, wrapped by the primary root key, in an annotation. Decrypt finds the KEK in the cache or
/// unwraps it once through the root key named by key_id. The hot path makes no remote call.
/// </summary>
public sealed class EnvelopeService : IDisposable
{
    private const string ApiserverWouldReject = "the plugin produced an Encrypt response kube-apiserver would reject: ";
    private readonly RootKeyRing _ring;
    private readonly EnvelopeOptions _options;
    private readonly TimeProvider _time;
    private readonly IRandomSource _random;
    private readonly ILogger _logger;
    private readonly KekCache _cache;
    private readonly SemaphoreSlim _rotationLock = new(1, 1);
    private LocalKek? _current;
    private long _rotations;

    public EnvelopeService(RootKeyRing ring, EnvelopeOptions options, TimeProvider time, IRandomSource random, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxUses is < 1 or > EnvelopeOptions.HardMaxUses)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"MaxUses must be 1..{EnvelopeOptions.HardMaxUses}");
        }

        _ring = ring;
        _options = options;
        _time = time;
        _random = random;
        _logger = logger;
        _cache = new KekCache(options.CacheSize);
    }

    /// <summary>The key_id of the primary root key: what Status reports and what the next Encrypt returns.</summary>
    public string CurrentKeyId => _ring.Primary.KeyId;

    public RootKeyRing Ring => _ring;

    public KekCacheStatistics CacheStatistics => _cache.Statistics;

    /// <summary>How many local KEKs this process has made.</summary>
    public long Rotations => Interlocked.Read(ref _rotations);

    public async Task<EncryptResult> EncryptAsync(ReadOnlyMemory<byte> plaintext, CancellationToken cancellationToken)
    {
        if (plaintext.IsEmpty)
        {
            throw KmsPluginException.Invalid("plaintext is empty");
        }

        if (plaintext.Length > _options.MaxPlaintextBytes)
        {
            throw KmsPluginException.Invalid(
                $"plaintext is {plaintext.Length} bytes, more than the maximum of {_options.MaxPlaintextBytes} (kube-apiserver sends {ApiserverLimits.ApiserverSeedBytes})");
        }

        if (_options.Mode == EnvelopeMode.Direct)
        {
            return await EncryptDirectAsync(plaintext, cancellationToken);
        }

        // Hot path: the current KEK, taken without awaiting (so nothing beyond the result is allocated).
        var kek = TryAcquireCurrentForSeal(countUse: true) ?? await AcquireKekForSealAsync(cancellationToken);
        try
        {
            var ciphertext = SealedSeedFormat.Seal(kek, plaintext.Span, _random);

            // The key_id and the annotation were checked against the apiserver's rules once, when the KEK was made
            // (RotateAsync); only the ciphertext's size depends on this call.
            if (ApiserverRules.CheckCiphertext(ciphertext) is { } problem)
            {
                throw new KmsPluginException(KmsErrorKind.Internal, ApiserverWouldReject + problem);
            }

            return new EncryptResult(ciphertext, kek.CacheKey.KeyId, [new(WrappedKekAnnotation.Key, kek.WrappedBlob)]);
        }
        finally
        {
            kek.Release();
        }
    }

    public async Task<byte[]> DecryptAsync(ReadOnlyMemory<byte> ciphertext, string keyId, IReadOnlyList<KeyValuePair<string, ReadOnlyMemory<byte>>> annotations,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(annotations);

        // Everything that can be checked locally is checked before any remote call.
        CheckKeyIdAndSize(ciphertext, keyId);

        // The format version byte decides, not the current mode: data written in either mode stays readable after a switch.
        if (DirectSeedFormat.IsDirect(ciphertext.Span))
        {
            return await DecryptDirectAsync(ciphertext, keyId, annotations, cancellationToken);
        }

        var request = CheckSealedRequest(ciphertext, keyId, annotations);

        // Hot path: a cached KEK, opened without awaiting or allocating beyond the plaintext.
        if (_cache.TryGetCached(request.CacheKey, out var kek))
        {
            try
            {
                return SealedSeedFormat.Open(kek, ciphertext.Span);
            }
            finally
            {
                kek.Release();
            }
        }

        return await DecryptUncachedAsync(ciphertext, request, cancellationToken);
    }

    /// <summary>The Decrypt checks shared by both formats: key_id and ciphertext size as the apiserver bounds them.</summary>
    internal static void CheckKeyIdAndSize(ReadOnlyMemory<byte> ciphertext, string keyId)
    {
        if (ApiserverRules.CheckKeyId(keyId) is { } keyIdProblem)
        {
            throw KmsPluginException.Invalid(keyIdProblem);
        }

        if (ciphertext.Length > ApiserverLimits.MaxCiphertextBytes)
        {
            throw KmsPluginException.Invalid($"ciphertext is {ciphertext.Length} bytes, more than the apiserver's maximum of {ApiserverLimits.MaxCiphertextBytes}");
        }
    }

    /// <summary>
    /// The local checks of a KEK-sealed Decrypt, before any cache lookup or remote call: the format, exactly our one
    /// annotation, a key_id we have configured, and an annotation that belongs to this ciphertext (its hash is the
    /// ciphertext's KEK reference).
    /// </summary>
    internal SealedRequest CheckSealedRequest(ReadOnlyMemory<byte> ciphertext, string keyId, IReadOnlyList<KeyValuePair<string, ReadOnlyMemory<byte>>> annotations)
    {
        SealedSeedFormat.CheckStructure(ciphertext.Span);
        var annotationValue = SingleWrappedKek(annotations);
        var rootKeyWrap = WrappedKekAnnotation.RootKeyWrap(annotationValue);
        var rootKey = RootKeyFor(keyId);

        var blobHash = Hash256.Of(annotationValue.Span);
        if (!blobHash.PrefixEquals(SealedSeedFormat.KekReference(ciphertext.Span)))
        {
            throw KmsPluginException.Corrupt($"annotation {WrappedKekAnnotation.Key} does not belong to this ciphertext");
        }

        return new SealedRequest(rootKey, new KekCacheKey(keyId, blobHash), annotationValue, rootKeyWrap);
    }

    /// <summary>A cache miss: one root-key unwrap, shared by every concurrent request for the same KEK (single flight).</summary>
    private async Task<byte[]> DecryptUncachedAsync(ReadOnlyMemory<byte> ciphertext, SealedRequest request, CancellationToken cancellationToken)
    {
        var kek = await _cache.GetOrUnwrapAsync(request.CacheKey, token => UnwrapKekAsync(request, token), _options.RootKeyTimeout, cancellationToken);
        try
        {
            return SealedSeedFormat.Open(kek, ciphertext.Span);
        }
        finally
        {
            kek.Release();
        }
    }

    /// <summary>Makes the first KEK ahead of the first Encrypt, so the apiserver's first call is fast. Failures are left for Encrypt to report.</summary>
    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        if (_options.Mode == EnvelopeMode.Direct)
        {
            return; // no local KEK in direct mode
        }

        try
        {
            var kek = await AcquireKekForSealAsync(cancellationToken, countUse: false);
            kek.Release();
        }
        catch (KmsPluginException e)
        {
            _logger.LogWarning("could not prepare a local KEK yet: {Reason}", e.Message);
        }
    }

    /// <summary>Direct mode: the primary root key wraps the seed itself, one remote call per Encrypt (<see cref="DirectSeedFormat"/>).</summary>
    private async Task<EncryptResult> EncryptDirectAsync(ReadOnlyMemory<byte> plaintext, CancellationToken cancellationToken)
    {
        var primary = _ring.Primary;
        var keyId = primary.KeyId;
        byte[] wrap;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(_options.RootKeyTimeout);
            try
            {
                wrap = await primary.WrapAsync(plaintext, DirectSeedFormat.WrapAssociatedData(keyId), timeout.Token);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                    $"root key '{primary.Name}' did not wrap the seed within {_options.RootKeyTimeout.TotalSeconds:0.#}s", e);
            }
        }

        var result = new EncryptResult(DirectSeedFormat.Encode(wrap), keyId, []);
        CheckAgainstApiserverRules(result);
        return result;
    }

    /// <summary>A direct-wrap ciphertext: one root-key unwrap per call, no cache (the apiserver caches the DEK it derives).</summary>
    private async Task<byte[]> DecryptDirectAsync(ReadOnlyMemory<byte> ciphertext, string keyId, IReadOnlyList<KeyValuePair<string, ReadOnlyMemory<byte>>> annotations,
        CancellationToken cancellationToken)
    {
        if (annotations.Count != 0)
        {
            throw KmsPluginException.Invalid(
                $"unexpected annotation \"{ApiserverRules.Printable(annotations[0].Key)}\": a direct-wrap ciphertext (format version {DirectSeedFormat.Version2}) comes with none");
        }

        var rootKeyWrap = DirectSeedFormat.RootKeyWrap(ciphertext);
        var rootKey = RootKeyFor(keyId);
        SecretBuffer seed;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(_options.RootKeyTimeout);
            try
            {
                seed = await rootKey.UnwrapAsync(rootKeyWrap, DirectSeedFormat.WrapAssociatedData(keyId), timeout.Token);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                    $"root key '{rootKey.Name}' did not unwrap the seed within {_options.RootKeyTimeout.TotalSeconds:0.#}s", e);
            }
        }

        using (seed)
        {
            return seed.Span.ToArray();
        }
    }

    private IRootKey RootKeyFor(string keyId) =>
        _ring.TryGet(keyId, out var rootKey)
            ? rootKey
            : throw new KmsPluginException(KmsErrorKind.UnknownKeyId,
                $"key_id {KeyIdHash.Of(keyId)} is not one of this plugin's root keys (primary key_id {KeyIdHash.Of(CurrentKeyId)}); "
                + "if the root key that wrote this data was removed from rootKeys, add it back as a decrypt-only entry");

    private static ReadOnlyMemory<byte> SingleWrappedKek(IReadOnlyList<KeyValuePair<string, ReadOnlyMemory<byte>>> annotations)
    {
        ReadOnlyMemory<byte>? found = null;
        for (var i = 0; i < annotations.Count; i++) // indexed: foreach over the interface would allocate an enumerator
        {
            var (key, value) = annotations[i];
            if (key != WrappedKekAnnotation.Key)
            {
                throw KmsPluginException.Invalid($"unexpected annotation \"{ApiserverRules.Printable(key)}\": this plugin only writes {WrappedKekAnnotation.Key}");
            }

            found = value;
        }

        return found ?? throw KmsPluginException.Invalid($"annotation {WrappedKekAnnotation.Key} is missing");
    }

    private async Task<LocalKek> UnwrapKekAsync(SealedRequest request, CancellationToken flightToken)
    {
        var (rootKey, cacheKey, annotationValue, rootKeyWrap) = request;
        SecretBuffer secret;
        try
        {
            secret = await rootKey.UnwrapAsync(rootKeyWrap, WrappedKekAnnotation.WrapAssociatedData(cacheKey.KeyId), flightToken);
        }
        catch (OperationCanceledException e) when (flightToken.IsCancellationRequested)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                $"root key '{rootKey.Name}' did not unwrap within {_options.RootKeyTimeout.TotalSeconds:0.#}s", e);
        }

        if (secret.Length != LocalKek.KeyBytes)
        {
            secret.Dispose();
            throw KmsPluginException.Corrupt($"root key '{rootKey.Name}' unwrapped a KEK of the wrong size");
        }

        return new LocalKek(secret, cacheKey, annotationValue.ToArray(), _time.GetUtcNow());
    }

    /// <summary>The current KEK, acquired and (with <paramref name="countUse"/>) counted, if it may still seal; else null.</summary>
    private LocalKek? TryAcquireCurrentForSeal(bool countUse)
    {
        var current = Volatile.Read(ref _current);
        if (current is not null && current.TryAcquire())
        {
            if (RotationReason(current) is null && (!countUse || current.CountSeal() <= _options.MaxUses))
            {
                return current;
            }

            current.Release();
        }

        return null;
    }

    private async Task<LocalKek> AcquireKekForSealAsync(CancellationToken cancellationToken, bool countUse = true)
    {
        while (true)
        {
            var stale = Volatile.Read(ref _current);
            if (TryAcquireCurrentForSeal(countUse) is { } kek)
            {
                return kek;
            }

            await RotateAsync(stale, cancellationToken);
        }
    }

    private string? RotationReason(LocalKek kek)
    {
        if (kek.CacheKey.KeyId != CurrentKeyId)
        {
            return "primary root key changed";
        }

        if (kek.Seals >= _options.MaxUses)
        {
            return "use limit reached";
        }

        return _time.GetUtcNow() - kek.CreatedAt >= _options.MaxAge ? "age limit reached" : null;
    }

    private async Task RotateAsync(LocalKek? stale, CancellationToken cancellationToken)
    {
        await _rotationLock.WaitAsync(cancellationToken);
        try
        {
            if (!ReferenceEquals(Volatile.Read(ref _current), stale))
            {
                return; // another request rotated while this one waited
            }

            var primary = _ring.Primary;
            var secret = new SecretBuffer(LocalKek.KeyBytes);
            LocalKek kek;
            try
            {
                _random.Fill(secret.WritableSpan);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(_options.RootKeyTimeout);
                byte[] wrap;
                try
                {
                    wrap = await primary.WrapAsync(secret.Memory, WrappedKekAnnotation.WrapAssociatedData(primary.KeyId), timeout.Token);
                }
                catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                        $"root key '{primary.Name}' did not wrap a new KEK within {_options.RootKeyTimeout.TotalSeconds:0.#}s", e);
                }

                var annotationValue = WrappedKekAnnotation.Encode(wrap);

                // Checked here, once per KEK, rather than on every Encrypt: every seal under this KEK returns this key_id and annotation.
                if ((ApiserverRules.CheckKeyId(primary.KeyId)
                        ?? ApiserverRules.CheckAnnotations([new(WrappedKekAnnotation.Key, annotationValue.Length)])) is { } problem)
                {
                    throw new KmsPluginException(KmsErrorKind.Internal, ApiserverWouldReject + problem);
                }

                kek = new LocalKek(secret, new KekCacheKey(primary.KeyId, Hash256.Of(annotationValue)), annotationValue, _time.GetUtcNow());
            }
            catch
            {
                secret.Dispose();
                throw;
            }

            _cache.Add(kek);
            var reason = stale is null ? "first KEK" : RotationReason(stale) ?? "replaced";
            Interlocked.Exchange(ref _current, kek)?.Release();
            Interlocked.Increment(ref _rotations);
            _logger.LogInformation("new local KEK wrapped by root key {RootKey} ({Provider}, key_id {KeyIdHash}): {Reason}",
                primary.Name, primary.Provider, KeyIdHash.Of(primary.KeyId), reason);
        }
        finally
        {
            _rotationLock.Release();
        }
    }

    private static void CheckAgainstApiserverRules(EncryptResult result)
    {
        var problem = ApiserverRules.CheckCiphertext(result.Ciphertext)
            ?? ApiserverRules.CheckKeyId(result.KeyId)
            ?? ApiserverRules.CheckAnnotations(result.Annotations.Select(a => new KeyValuePair<string, int>(a.Key, a.Value.Length)));
        if (problem is not null)
        {
            throw new KmsPluginException(KmsErrorKind.Internal, ApiserverWouldReject + problem);
        }
    }

    public void Dispose()
    {
        Interlocked.Exchange(ref _current, null)?.Release();
        _cache.Dispose();
        _rotationLock.Dispose();
    }
}
