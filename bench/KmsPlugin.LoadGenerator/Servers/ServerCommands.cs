using System.Globalization;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace KmsPlugin.LoadGenerator.Servers;

/// <summary>
/// The servers the load generator starts as its own child processes (so their CPU and memory are theirs alone).
/// Both stop on SIGTERM or when standard input closes, so they never outlive the load generator.
/// </summary>
internal static class ServerCommands
{
    /// <summary><c>noop-server --listen unix:///PATH [--bare] [--interceptor]</c>: the ceiling.</summary>
    public static async Task<int> RunNoopAsync(string socketPath, bool bare, bool interceptor)
    {
        await using var app = NoopServer.Build(socketPath, bare, interceptor);
        await app.StartAsync();
        File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await ServeUntilStoppedAsync(app, _ => null);
        return 0;
    }

    /// <summary>
    /// <c>latency-plugin --config FILE --latency 20ms</c>: the real plugin (PluginServer with the given configuration)
    /// whose root keys answer after the injected latency and are counted. Standard input line <c>counts</c> is
    /// answered on standard output with <c>counts wraps=W unwraps=U inflight=I healthy=true|false</c>.
    /// </summary>
    public static async Task<int> RunLatencyPluginAsync(string configPath, TimeSpan latency)
    {
        var config = ConfigLoader.LoadFile(configPath);
        var counter = new RemoteCallCounter();
        await using var app = PluginServer.Build(config, new ServerDependencies { DecorateRootKey = key => new LatencyRootKey(key, latency, counter) });
        await PluginServer.StartAsync(app, config);
        var health = app.Services.GetRequiredService<RootKeyHealthMonitor>();
        await ServeUntilStoppedAsync(app, line => line == "counts"
            ? string.Create(CultureInfo.InvariantCulture,
                $"counts wraps={counter.Wraps} unwraps={counter.Unwraps} inflight={counter.InFlight} healthy={(health.Current.Healthy ? "true" : "false")}")
            : null);
        return 0;
    }

    private static async Task ServeUntilStoppedAsync(WebApplication app, Func<string, string?> answer)
    {
        var stdin = Task.Run(async () =>
        {
            while (await Console.In.ReadLineAsync() is { } line)
            {
                if (answer(line) is { } reply)
                {
                    await Console.Out.WriteLineAsync(reply);
                    await Console.Out.FlushAsync();
                }
            }

            app.Lifetime.StopApplication(); // the load generator went away
        });
        await app.WaitForShutdownAsync();
        _ = stdin; // the reader ends with the process
    }
}
