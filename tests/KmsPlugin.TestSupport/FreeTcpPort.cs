using System.Net;
using System.Net.Sockets;

namespace KmsPlugin.TestSupport;

/// <summary>
/// A loopback TCP port that was free a moment ago, for servers that must be told their port in advance (the plugin's
/// health port is matched by number in its routes, so port 0 cannot be used there).
/// </summary>
public static class FreeTcpPort
{
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
