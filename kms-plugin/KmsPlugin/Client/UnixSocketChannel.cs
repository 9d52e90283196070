using System.Net.Sockets;
using Grpc.Net.Client;

namespace KmsPlugin.Client;

/// <summary>
/// A gRPC channel over a Unix socket, as kube-apiserver opens one: one HTTP/2 connection, h2c prior knowledge,
/// <c>:authority</c> localhost (what apiservers 1.32+ send). Used by <c>status</c>/<c>probe</c> and the tests.
/// </summary>
public static class UnixSocketChannel
{
    public static GrpcChannel Create(string socketPath, int? maxReceiveMessageBytes = null)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            EnableMultipleHttp2Connections = false,
        };
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = handler,
            MaxReceiveMessageSize = maxReceiveMessageBytes ?? 4 * 1024 * 1024, // grpc-go's default, as the apiserver uses
            MaxSendMessageSize = null,
        });
    }
}
