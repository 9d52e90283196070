namespace KmsPlugin.Core.Envelope;

/// <summary>Limits of the local KEK hierarchy. Defaults follow k8s.io/kms pkg/hierarchy (2^21 uses, 7 days, 1000 cached KEKs).</summary>
public sealed record EnvelopeOptions
{
    /// <summary>Seals under one KEK before a new one is made. 2^21 keeps random 96-bit GCM nonces far below the
    /// 2^-32 collision bound of NIST SP 800-38D section 8.3 (which allows 2^32 invocations).</summary>
    public long MaxUses { get; init; } = 1L << 21;

    /// <summary>Age after which a new KEK is made for new seals (old KEKs still decrypt).</summary>
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromDays(7);

    /// <summary>How many unwrapped KEKs are kept in memory; each miss costs one root-key unwrap.</summary>
    public int CacheSize { get; init; } = 1000;

    /// <summary>Upper bound for one root-key call made on behalf of several waiting requests (single-flight unwrap).</summary>
    public TimeSpan RootKeyTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Largest plaintext Encrypt accepts. The apiserver sends 32 bytes; the bound keeps the ciphertext
    /// well inside the apiserver's 1024-byte limit.</summary>
    public int MaxPlaintextBytes { get; init; } = 512;

    /// <summary>How Encrypt protects seeds: the local KEK hierarchy (default) or a root-key wrap per seed.</summary>
    public EnvelopeMode Mode { get; init; } = EnvelopeMode.Kek;

    /// <summary>
    /// The most seals any configuration may allow under one KEK: 2^28, a sixteenth of the 2^32 random-nonce
    /// invocations NIST SP 800-38D section 8.3 allows per key, so even a misconfigured plugin keeps the nonce
    /// collision probability below 2^-41.
    /// </summary>
    public const long HardMaxUses = 1L << 28;

    /// <summary>How many additional-wrap root keys fit beside the primary in the one annotation.</summary>
    public const int MaxAdditionalWraps = WrappedKekAnnotation.MaxWraps - 1;
}
