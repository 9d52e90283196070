using KmsPlugin.Core.Envelope;

namespace KmsPlugin.Hosting;

/// <summary>Runs the root-key probe loop (followed by the version follower) for the life of the process and prepares the first KEK.</summary>
public sealed class HealthProbeService(RootKeyHealthMonitor monitor, EnvelopeService envelope, RootKeyVersionFollower follower) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        var probing = monitor.RunAsync(stoppingToken, follower.ObserveAsync);
        await envelope.PrepareAsync(stoppingToken);
        await probing;
    }
}
