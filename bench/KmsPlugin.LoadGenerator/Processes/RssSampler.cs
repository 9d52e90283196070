namespace KmsPlugin.LoadGenerator.Processes;

/// <summary>Samples a process's resident set size every 100 ms while load runs and keeps the largest value.</summary>
internal sealed class RssSampler : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _max;

    public RssSampler(ChildProcess process)
    {
        _loop = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    var rss = process.RssBytes();
                    if (rss > Interlocked.Read(ref _max))
                    {
                        Interlocked.Exchange(ref _max, rss);
                    }

                    await Task.Delay(100, _stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or IOException)
                {
                    return; // stopped, or the process is gone
                }
            }
        });
    }

    public long MaxBytes => Interlocked.Read(ref _max);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}
