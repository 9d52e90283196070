using System.Diagnostics;
using Grpc.Core;
using KmsPlugin.Client;
using KmsPlugin.Protocol.V2;

namespace KmsPlugin.LoadGenerator.Processes;

/// <summary>"Ready" means what it means to kube-apiserver: the socket answers a Status call.</summary>
internal static class Readiness
{
    /// <summary>Polls every 2 ms until Status answers; returns the time since the process was started.</summary>
    public static async Task<TimeSpan> WaitAsync(ChildProcess process, string socketPath, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(process);
        using var channel = UnixSocketChannel.Create(socketPath);
        var client = new KeyManagementService.KeyManagementServiceClient(channel);
        var until = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < until)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"process {process.Id} exited before serving on {socketPath}:\n{process.ErrorOutput}");
            }

            if (File.Exists(socketPath))
            {
                try
                {
                    await client.StatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(1));
                    return Stopwatch.GetElapsedTime(process.StartedAt);
                }
                catch (RpcException)
                {
                    // bound but not serving yet
                }
            }

            await Task.Delay(2);
        }

        throw new TimeoutException($"process {process.Id} did not serve on {socketPath} within {timeout.TotalSeconds:0} s:\n{process.ErrorOutput}");
    }
}
