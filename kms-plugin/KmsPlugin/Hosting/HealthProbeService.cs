using KmsPlugin.Core.Envelope;

namespace KmsPlugin.Hosting;

/// <summary>Runs the root-key probe loop for the life of the process and prepares the first KEK.</summary>
public sealed class HealthProbeService(RootKeyHealthMonitor monitor, EnvelopeService envelope) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        var probing = monitor.RunAsync(stoppingToken);
        await envelope.PrepareAsync(stoppingToken);
        await probing;
    }
}
