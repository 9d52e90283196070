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
/// unwraps it once through the root key named by key_id. The hot path makes no remote call. The root keys are read
/// from <see cref="ActiveRootKeys"/> on every call, so a reload or a followed key version applies to the next call
/// while calls in flight finish with the ring they started with.
/// </summary>
public sealed class EnvelopeService : IDisposable
{
    private const string ApiserverWouldReject = "the plugin produced an Encrypt response kube-apiserver would reject: ";
    private readonly ActiveRootKeys _keys;
    private readonly EnvelopeOptions _options;
    private readonly TimeProvider _time;
    private readonly IRandomSource _random;
    private readonly ILogger _logger;
    private readonly KekCache _cache;
    private readonly SemaphoreSlim _rotationLock = new(1, 1);
    private LocalKek? _current;
    private long _rotations;

    /// <summary>A service over a fixed ring (tests and tools); the ring is not disposed by the service.</summary>
    public EnvelopeService(RootKeyRing ring, EnvelopeOptions options, TimeProvider time, IRandomSource random, ILogger logger)
        : this(new ActiveRootKeys(ring, time), options, time, random, logger)
    {
    }

    public EnvelopeService(ActiveRootKeys keys, EnvelopeOptions options, TimeProvider time, IRandomSource random, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxUses is < 1 or > EnvelopeOptions.HardMaxUses)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"MaxUses must be 1..{EnvelopeOptions.HardMaxUses}");
        }

        _keys = keys;
        _options = options;
        _time = time;
        _random = random;
        _logger = logger;
        _cache = new KekCache(options.CacheSize);
    }

    /// <summary>The key_id of the primary root key (with its epoch): what Status reports and what the next Encrypt returns.</summary>
    public string CurrentKeyId => _keys.Current.PrimaryKeyId;

    public RootKeyRing Ring => _keys.Current;

    /// <summary>Time after an additional wrap failed before a KEK is made again to retry it.</summary>
    public static readonly TimeSpan MissingWrapRetry = TimeSpan.FromMinutes(1);

    public KekCacheStatistics CacheStatistics => _cache.Statistics;

    /// <summary>How many local KEKs this process has made.</summary>
    public long Rotations => Interlocked.Read(ref _rotations);

    /// <summary>The KEK that seals new seeds (its creation time and seals so far), or null before the first one; for metrics.</summary>
    public CurrentKekInfo? CurrentKek => Volatile.Read(ref _current) is { } kek ? new CurrentKekInfo(kek.CreatedAt, kek.Seals, kek.MissingWraps) : null;

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
        var ring = _keys.Current;
        var baseKeyId = KeyIdEpoch.BaseOf(keyId);
        SealedRequest request;
        if (!WrappedKekAnnotation.IsMultiWrap(annotationValue.Span))
        {
            // v1: one wrap, made by the root key the key_id names (or another version of it).
            var rootKeyWrap = WrappedKekAnnotation.RootKeyWrap(annotationValue);
            var rootKey = ring.FindUnwrapper(baseKeyId, rootKeyWrap.Span) ?? throw UnknownKeyId(keyId, ring);
            request = new SealedRequest(rootKey, default, annotationValue, rootKeyWrap);
        }
        else
        {
            request = MultiWrapRequest(ring, keyId, WrappedKekAnnotation.Wraps(annotationValue));
        }

        var blobHash = Hash256.Of(annotationValue.Span);
        if (!blobHash.PrefixEquals(SealedSeedFormat.KekReference(ciphertext.Span)))
        {
            throw KmsPluginException.Corrupt($"annotation {WrappedKekAnnotation.Key} does not belong to this ciphertext");
        }

        return request with { CacheKey = new KekCacheKey(keyId, blobHash), AnnotationValue = annotationValue };
    }

    /// <summary>
    /// A v2 annotation: the first wrap must be the primary named by key_id (what Encrypt wrote); the keys that can
    /// unwrap are taken in configured order (DESIGN: "Decrypt tries the wraps in configured order"), so a lost
    /// primary region falls back to an additional wrap.
    /// </summary>
    private static SealedRequest MultiWrapRequest(RootKeyRing ring, string keyId, List<KeyValuePair<string, ReadOnlyMemory<byte>>> wraps)
    {
        if (wraps[0].Key != KeyIdEpoch.BaseOf(keyId))
        {
            throw KmsPluginException.Corrupt($"annotation {WrappedKekAnnotation.Key} was not written under key_id {KeyIdHash.Of(keyId)}");
        }

        var candidates = new List<KeyValuePair<IRootKey, ReadOnlyMemory<byte>>>();
        foreach (var key in ring.Keys)
        {
            foreach (var (wrapKeyId, wrap) in wraps)
            {
                if (key.Recognizes(wrapKeyId, wrap.Span))
                {
                    candidates.Add(new(key, wrap));
                    break;
                }
            }
        }

        if (candidates.Count == 0)
        {
            throw UnknownKeyId(keyId, ring);
        }

        return new SealedRequest(candidates[0].Key, default, default, candidates[0].Value, candidates.Count > 1 ? candidates[1..] : null);
    }

    private static KmsPluginException UnknownKeyId(string keyId, RootKeyRing ring) =>
        new(KmsErrorKind.UnknownKeyId,
            $"key_id {KeyIdHash.Of(keyId)} is not one of this plugin's root keys (primary key_id {KeyIdHash.Of(ring.PrimaryKeyId)}); "
            + "if the root key that wrote this data was removed from rootKeys, add it back as a decrypt-only entry");

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
        catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException && cancellationToken.IsCancellationRequested)
        {
            // stopping before the first KEK was made (e.g. the socket or health port could not be bound)
        }
    }

    /// <summary>Direct mode: the primary root key wraps the seed itself, one remote call per Encrypt (<see cref="DirectSeedFormat"/>).</summary>
    private async Task<EncryptResult> EncryptDirectAsync(ReadOnlyMemory<byte> plaintext, CancellationToken cancellationToken)
    {
        var ring = _keys.Current;
        var primary = ring.Primary;
        var keyId = ring.PrimaryKeyId;
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
        var ring = _keys.Current;
        var rootKey = ring.FindUnwrapper(KeyIdEpoch.BaseOf(keyId), rootKeyWrap.Span) ?? throw UnknownKeyId(keyId, ring);
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
        var associatedData = WrappedKekAnnotation.WrapAssociatedData(request.CacheKey.KeyId);
        KmsPluginException? firstFailure = null;
        var attempts = 1 + (request.Fallbacks?.Count ?? 0);
        for (var i = 0; i < attempts; i++)
        {
            var (rootKey, wrap) = i == 0 ? new(request.RootKey, request.RootKeyWrap) : request.Fallbacks![i - 1];
            try
            {
                return await UnwrapWithAsync(rootKey, wrap, associatedData, request, flightToken);
            }
            catch (KmsPluginException e) when (i + 1 < attempts && !flightToken.IsCancellationRequested)
            {
                // Another configured root key holds a wrap of the same KEK: a lost region or provider is not fatal.
                firstFailure ??= e;
                _logger.LogWarning("root key {RootKey} could not unwrap a KEK ({Reason}); trying the next wrap", rootKey.Name, e.Message);
            }
        }

        throw firstFailure ?? new KmsPluginException(KmsErrorKind.Internal, "no root key was tried");
    }

    private async Task<LocalKek> UnwrapWithAsync(IRootKey rootKey, ReadOnlyMemory<byte> wrap, byte[] associatedData, SealedRequest request, CancellationToken flightToken)
    {
        SecretBuffer secret;
        try
        {
            secret = await rootKey.UnwrapAsync(wrap, associatedData, flightToken);
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

        return new LocalKek(secret, request.CacheKey, request.AnnotationValue.ToArray(), _time.GetUtcNow());
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

        if (kek.MissingWraps && _time.GetUtcNow() - kek.CreatedAt >= MissingWrapRetry)
        {
            return "retrying an additional wrap that failed";
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

            var ring = _keys.Current;
            var primary = ring.Primary;
            var keyId = ring.PrimaryKeyId;
            var secret = new SecretBuffer(LocalKek.KeyBytes);
            LocalKek kek;
            try
            {
                _random.Fill(secret.WritableSpan);
                var associatedData = WrappedKekAnnotation.WrapAssociatedData(keyId);
                var wrap = await WrapWithAsync(primary, secret, associatedData, "wrap a new KEK", cancellationToken);
                var (annotationValue, missing) = await AddAdditionalWrapsAsync(ring, primary, wrap, secret, associatedData, cancellationToken);

                // Checked here, once per KEK, rather than on every Encrypt: every seal under this KEK returns this key_id and annotation.
                if ((ApiserverRules.CheckKeyId(keyId)
                        ?? ApiserverRules.CheckAnnotations([new(WrappedKekAnnotation.Key, annotationValue.Length)])) is { } problem)
                {
                    throw new KmsPluginException(KmsErrorKind.Internal, ApiserverWouldReject + problem);
                }

                kek = new LocalKek(secret, new KekCacheKey(keyId, Hash256.Of(annotationValue)), annotationValue, _time.GetUtcNow()) { MissingWraps = missing };
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
            _logger.LogInformation("new local KEK wrapped by root key {RootKey} ({Provider}, key_id {KeyIdHash}){Additional}: {Reason}",
                primary.Name, primary.Provider, KeyIdHash.Of(kek.CacheKey.KeyId),
                ring.AdditionalWraps.Count == 0 ? "" : $" and {ring.AdditionalWraps.Count} additional root key(s)", reason);
        }
        finally
        {
            _rotationLock.Release();
        }
    }

    private async Task<byte[]> WrapWithAsync(IRootKey rootKey, SecretBuffer secret, byte[] associatedData, string what, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.RootKeyTimeout);
        try
        {
            return await rootKey.WrapAsync(secret.Memory, associatedData, timeout.Token);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                $"root key '{rootKey.Name}' did not {what} within {_options.RootKeyTimeout.TotalSeconds:0.#}s", e);
        }
    }

    /// <summary>
    /// The annotation value for a new KEK: v1 with the primary's wrap alone, or v2 with every additional wrap too. An
    /// additional root key that fails does not fail the KEK (losing an escrow must not stop Encrypt): the KEK is
    /// marked and replaced after <see cref="MissingWrapRetry"/>, and the failure is logged.
    /// </summary>
    private async Task<(byte[] Value, bool Missing)> AddAdditionalWrapsAsync(RootKeyRing ring, IRootKey primary, byte[] primaryWrap, SecretBuffer secret,
        byte[] associatedData, CancellationToken cancellationToken)
    {
        if (ring.AdditionalWraps.Count == 0)
        {
            return (WrappedKekAnnotation.Encode(primaryWrap), false);
        }

        var wraps = new List<KeyValuePair<string, byte[]>> { new(primary.KeyId, primaryWrap) };
        var missing = false;
        foreach (var additional in ring.AdditionalWraps)
        {
            try
            {
                wraps.Add(new(additional.KeyId, await WrapWithAsync(additional, secret, associatedData, "wrap a new KEK", cancellationToken)));
            }
            catch (KmsPluginException e)
            {
                missing = true;
                _logger.LogWarning("additional root key {RootKey} ({Provider}) did not wrap the new KEK, which is made without that wrap: {Reason}",
                    additional.Name, additional.Provider, e.Message);
            }
        }

        return (wraps.Count == 1 ? WrappedKekAnnotation.Encode(primaryWrap) : WrappedKekAnnotation.EncodeMany(wraps), missing);
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
