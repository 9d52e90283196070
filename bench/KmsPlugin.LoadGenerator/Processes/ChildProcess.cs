using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Threading.Channels;

namespace KmsPlugin.LoadGenerator.Processes;

/// <summary>
/// A server under test in a process of its own, so its CPU time and memory can be read from procfs apart from the
/// load generator's. Standard error is kept for error messages; standard output lines are queued for the
/// line protocol of <c>latency-plugin</c> (see <see cref="RequestLineAsync"/>). Standard input stays open: the
/// bench's own servers stop when it closes, so they never outlive the load generator.
/// </summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Channel<string> _stdout = Channel.CreateUnbounded<string>();
    private readonly StringBuilder _stderr = new();

    private ChildProcess(Process process, long startedAt)
    {
        _process = process;
        StartedAt = startedAt;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                _stdout.Writer.TryComplete();
            }
            else
            {
                _stdout.Writer.TryWrite(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_stderr)
                {
                    _stderr.AppendLine(e.Data);
                }
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>Stopwatch timestamp taken just before the process was started.</summary>
    public long StartedAt { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public string ErrorOutput
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public static ChildProcess Start(ProcessCommand command, string workingDirectory)
    {
        ArgumentNullException.ThrowIfNull(command);
        var start = new ProcessStartInfo(command.FileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in command.Arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in command.Environment)
        {
            start.Environment[name] = value;
        }

        var startedAt = Stopwatch.GetTimestamp();
        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {command}");
        return new ChildProcess(process, startedAt);
    }

    public TimeSpan CpuTime() => ProcStat.CpuTime(Id);

    public long RssBytes() => ProcStat.RssBytes(Id);

    public long PeakRssBytes() => ProcStat.PeakRssBytes(Id);

    /// <summary>Writes <paramref name="request"/> as a line to standard input and returns the next output line starting with <paramref name="prefix"/>.</summary>
    public async Task<string> RequestLineAsync(string request, string prefix, TimeSpan timeout)
    {
        await _process.StandardInput.WriteLineAsync(request);
        await _process.StandardInput.FlushAsync();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var line = await _stdout.Reader.ReadAsync(cancel.Token);
                if (line.StartsWith(prefix, StringComparison.Ordinal))
                {
                    return line;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            throw new InvalidOperationException($"process {Id} did not answer '{request}' within {timeout.TotalSeconds:0.#} s:\n{ErrorOutput}", e);
        }
    }

    /// <summary>SIGTERM (a graceful stop, as the kubelet sends), then a kill if it has not exited in time.</summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        if (_process.HasExited)
        {
            return;
        }

        using (var kill = Process.Start("kill", ["-TERM", Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
