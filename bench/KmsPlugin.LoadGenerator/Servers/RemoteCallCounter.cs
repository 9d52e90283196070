namespace KmsPlugin.LoadGenerator.Servers;

/// <summary>Counts root-key calls: what a remote KMS would bill and rate-limit.</summary>
internal sealed class RemoteCallCounter
{
    private long _wraps;
    private long _unwraps;
    private long _inFlight;

    public long Wraps => Interlocked.Read(ref _wraps);

    public long Unwraps => Interlocked.Read(ref _unwraps);

    public long InFlight => Interlocked.Read(ref _inFlight);

    public void BeginWrap()
    {
        Interlocked.Increment(ref _wraps);
        Interlocked.Increment(ref _inFlight);
    }

    public void BeginUnwrap()
    {
        Interlocked.Increment(ref _unwraps);
        Interlocked.Increment(ref _inFlight);
    }

    public void End() => Interlocked.Decrement(ref _inFlight);
}
