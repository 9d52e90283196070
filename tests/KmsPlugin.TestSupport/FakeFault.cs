namespace KmsPlugin.TestSupport;

/// <summary>The failures a wire-level KMS fake can inject; each fake answers them in its own protocol's words.</summary>
public enum FaultKind
{
    /// <summary>No error: only <see cref="FakeFault.Latency"/> applies (deadline and timeout tests).</summary>
    None,

    /// <summary>HTTP 500 with the service's internal-error body.</summary>
    InternalError,

    /// <summary>HTTP 503 with a non-service body (a load balancer's page, a sealed Vault).</summary>
    ServiceUnavailable,

    /// <summary>Throttling: AWS ThrottlingException, HTTP 429 with Retry-After elsewhere.</summary>
    Throttling,

    /// <summary>The caller's identity may not use the key.</summary>
    AccessDenied,

    /// <summary>The key is disabled (or its version is no longer allowed).</summary>
    Disabled,

    /// <summary>The key does not exist.</summary>
    NotFound,

    /// <summary>The key is in a state that forbids the operation (e.g. pending deletion).</summary>
    InvalidState,

    /// <summary>A 200 response whose body cannot be read.</summary>
    Malformed,

    /// <summary>The stored ciphertext arrives altered (storage corruption): the fake's real AEAD rejects it.</summary>
    TamperCiphertext,

    /// <summary>A decrypt answers with altered plaintext (only the plugin's own authentication can notice).</summary>
    CorruptPlaintext,
}

/// <summary>
/// One injected fault: which failure, for which operation (null = every operation), how many times (then the fake
/// behaves again), after how much latency. Thread-safe; each matching request consumes one use.
/// </summary>
public sealed class FakeFault(FaultKind kind, string? operation = null, int times = int.MaxValue, TimeSpan latency = default)
{
    private int _remaining = times;

    public FaultKind Kind { get; } = kind;

    public string? Operation { get; } = operation;

    public TimeSpan Latency { get; } = latency;

    /// <summary>Seconds a throttling response asks the client to wait (Retry-After), when the protocol has it.</summary>
    public int RetryAfterSeconds { get; init; }

    /// <summary>True (and one use consumed) when the fault hits this request.</summary>
    public bool TryHit(string operation) =>
        (Operation is null || string.Equals(Operation, operation, StringComparison.Ordinal)) && Interlocked.Decrement(ref _remaining) >= 0;
}
