namespace KmsPlugin.TestSupport;

/// <summary>What an injected fault does to one request of a fake remote service.</summary>
public enum FaultAction
{
    /// <summary>Answer with an error status and the service's error body (code, optional Retry-After).</summary>
    Error,

    /// <summary>Answer 200 with one byte of the result flipped (or a checksum field wrong, where the protocol has one).</summary>
    CorruptResult,

    /// <summary>Answer 200 with the result cut short.</summary>
    TruncateResult,

    /// <summary>Sleep <see cref="Fault.Delay"/> before answering normally (cancelled when the client gives up).</summary>
    Delay,
}

/// <summary>One injected fault: applied to the next <see cref="Times"/> requests of <see cref="Operation"/> (null: any key operation).</summary>
public sealed record Fault
{
    public string? Operation { get; init; }

    public FaultAction Action { get; init; } = FaultAction.Error;

    public int Times { get; init; } = int.MaxValue;

    public int Status { get; init; } = 503;

    /// <summary>The service's error code (e.g. Key Vault <c>Forbidden</c>, Cloud KMS <c>PERMISSION_DENIED</c>).</summary>
    public string? Code { get; init; }

    /// <summary>A nested code where the service has one (Key Vault <c>innererror.code</c>, e.g. <c>KeyDisabled</c>).</summary>
    public string? InnerCode { get; init; }

    /// <summary>The Retry-After header value (delta-seconds), if any.</summary>
    public string? RetryAfter { get; init; }

    public TimeSpan Delay { get; init; }
}

/// <summary>
/// Faults a wire-level fake applies to incoming requests, in order, thread-safe; the fakes count every request they
/// receive separately, so tests can assert exactly how many attempts a client made.
/// </summary>
public sealed class FaultPlan
{
    private readonly Lock _lock = new();
    private readonly List<(Fault Fault, int Remaining)> _faults = [];

    public void Add(Fault fault)
    {
        ArgumentNullException.ThrowIfNull(fault);
        lock (_lock)
        {
            _faults.Add((fault, fault.Times));
        }
    }

    public void Clear()
    {
        lock (_lock)
        {
            _faults.Clear();
        }
    }

    /// <summary>The fault for this request of <paramref name="operation"/>, if one applies (consuming one of its times).</summary>
    public Fault? Take(string operation)
    {
        lock (_lock)
        {
            for (var i = 0; i < _faults.Count; i++)
            {
                var (fault, remaining) = _faults[i];
                if (fault.Operation is not null && fault.Operation != operation)
                {
                    continue;
                }

                if (remaining <= 1)
                {
                    _faults.RemoveAt(i);
                }
                else if (remaining != int.MaxValue)
                {
                    _faults[i] = (fault, remaining - 1);
                }

                return fault;
            }

            return null;
        }
    }
}
