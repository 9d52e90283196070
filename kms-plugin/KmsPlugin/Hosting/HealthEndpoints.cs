using KmsPlugin.Core.Envelope;

namespace KmsPlugin.Hosting;

/// <summary>
/// HTTP health on the loopback port. /livez says the process is alive and never fails because the remote root key
/// is down or throttling (a restart fixes neither — aws-encryption-provider's livez makes the same choice);
/// /readyz and /healthz say whether the primary root key is usable, with the reason.
/// </summary>
public static class HealthEndpoints
{
    public static void Map(WebApplication app, int port)
    {
        ArgumentNullException.ThrowIfNull(app);
        var host = $"*:{port}";
        app.MapGet("/livez", () => Results.Text("ok\n")).RequireHost(host);
        app.MapGet("/readyz", (RootKeyHealthMonitor monitor) => Readiness(monitor)).RequireHost(host);
        app.MapGet("/healthz", (RootKeyHealthMonitor monitor) => Readiness(monitor)).RequireHost(host);
    }

    private static IResult Readiness(RootKeyHealthMonitor monitor)
    {
        var state = monitor.Current;
        return state.Healthy
            ? Results.Text("ok\n")
            : Results.Text(state.Reason + "\n", statusCode: StatusCodes.Status503ServiceUnavailable);
    }
}
