using System.Diagnostics;
using System.Text;
using KmsPlugin.Client;

namespace KmsPlugin.TestSupport;

/// <summary>
/// The real <c>kms-plugin</c> executable in a child process, as an operator runs it: used where the process
/// boundary matters (exit codes, SIGTERM, kill -9 and restart, a second control-plane node).
/// </summary>
public sealed class PluginProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private PluginProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>kms-plugin.dll, built next to the tests by the project reference.</summary>
    public static string PluginDll { get; } = Path.Combine(AppContext.BaseDirectory, "kms-plugin.dll");

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public int Id => _process.Id;

    public static PluginProcess Start(string workingDirectory, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(PluginDll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        return new PluginProcess(Process.Start(start) ?? throw new InvalidOperationException("could not start dotnet"));
    }

    /// <summary>Runs a short command (probe, status, a failing serve) to completion.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(string workingDirectory, IReadOnlyDictionary<string, string>? environment,
        params string[] args)
    {
        await using var process = Start(workingDirectory, environment, args);
        var exit = await process.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return (exit, process.Output);
    }

    /// <summary>Waits until the socket answers a Status call.</summary>
    public Task WaitUntilServingAsync(string socketPath, TimeSpan? timeout = null) =>
        WaitUntilServingAsync(socketPath, () => _process.HasExited ? $"kms-plugin exited with {_process.ExitCode} before serving:\n{Output}" : null,
            () => Output, timeout);

    /// <summary>
    /// Waits until <paramref name="socketPath"/> answers a Status call (the socket file appears at bind, a moment before
    /// the server accepts); <paramref name="failed"/> says why to stop waiting (the process exited), or null.
    /// </summary>
    public static async Task WaitUntilServingAsync(string socketPath, Func<string?> failed, Func<string> output, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(failed);
        ArgumentNullException.ThrowIfNull(output);
        var until = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (DateTime.UtcNow < until)
        {
            if (failed() is { } reason)
            {
                throw new InvalidOperationException(reason);
            }

            if (File.Exists(socketPath))
            {
                try
                {
                    using var channel = UnixSocketChannel.Create(socketPath);
                    await new ApiserverEmulator(channel, TimeSpan.FromSeconds(1)).StatusAsync();
                    return;
                }
                catch (global::Grpc.Core.RpcException)
                {
                    // not ready yet
                }
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"kms-plugin did not serve on {socketPath}:\n{output()}");
    }

    public void Signal(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cancel.Token);
        _process.WaitForExit(); // drain redirected output
        return _process.ExitCode;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
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
