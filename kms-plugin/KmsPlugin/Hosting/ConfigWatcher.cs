using System.Runtime.InteropServices;

namespace KmsPlugin.Hosting;

/// <summary>
/// Triggers <see cref="ConfigReloader"/> when the configuration file may have changed: a filesystem event in its
/// directory (a Kubernetes ConfigMap or Secret mount swaps a <c>..data</c> symlink rather than writing the file, so
/// every event in the directory counts) and a poll every <c>reload.pollInterval</c> for filesystems whose events are
/// unreliable — both only with <c>reload.watch</c> — and SIGHUP always. The reloader compares content, so extra
/// triggers cost one file read.
/// </summary>
public sealed class ConfigWatcher(ConfigReloader reloader, TimeProvider time, ILogger<ConfigWatcher> logger) : BackgroundService
{
    private readonly SemaphoreSlim _signal = new(0, 1);
    private bool _forced;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var config = reloader.Current;
        if (config.SourcePath is not { } path)
        {
            return; // --dev: nothing to reload
        }

        using var watcher = config.Reload.Watch ? new FileSystemWatcher(Path.GetDirectoryName(path) ?? "/") : null;
        if (watcher is not null)
        {
            watcher.IncludeSubdirectories = false;
            watcher.NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime;
            FileSystemEventHandler onChange = (_, _) => Signal();
            watcher.Changed += onChange;
            watcher.Created += onChange;
            watcher.Deleted += onChange;
            watcher.Renamed += (_, _) => Signal();
            watcher.EnableRaisingEvents = true;
        }

        using var hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true; // SIGHUP means "reload", not "terminate"
            Volatile.Write(ref _forced, true); // and "try again" for a file that was rejected
            Signal();
        });
        var interval = config.Reload.Watch ? config.Reload.PollInterval : Timeout.InfiniteTimeSpan;
        using var poll = time.CreateTimer(_ => Signal(), null, interval, interval);
        if (config.Reload.Watch)
        {
            logger.LogInformation("watching {Path} for configuration changes (also re-read every {Interval}s and on SIGHUP)", path, interval.TotalSeconds);
        }
        else
        {
            logger.LogInformation("configuration {Path} is reloaded on SIGHUP only (reload.watch is false)", path);
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await _signal.WaitAsync(stoppingToken);

                // Editors and ConfigMap updates write in several steps: let them finish before reading.
                await Task.Delay(TimeSpan.FromMilliseconds(200), stoppingToken);
                await reloader.ReloadAsync(stoppingToken, force: Interlocked.Exchange(ref _forced, false));
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError(e, "configuration reload failed unexpectedly; still serving the previous configuration");
            }
        }
    }

    private void Signal()
    {
        try
        {
            if (_signal.CurrentCount == 0)
            {
                _signal.Release();
            }
        }
        catch (SemaphoreFullException)
        {
            // already signalled
        }
        catch (ObjectDisposedException)
        {
            // stopping
        }
    }

    public override void Dispose()
    {
        base.Dispose();
        _signal.Dispose();
    }
}
