using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Net.Client;
using KmsPlugin.Client;
using KmsPlugin.Protocol.V2;

namespace KmsPlugin.LoadGenerator.Load;

/// <summary>
/// One server's socket with one gRPC channel (one HTTP/2 connection, as kube-apiserver keeps per plugin) and the
/// three calls with the apiserver's 3 s deadline. Requests are built once per stream and reused, so the client's own
/// cost is the gRPC stack's.
/// </summary>
internal sealed class KmsTarget : IDisposable
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(3);
    private static readonly StatusRequest StatusRequest = new();
    private readonly GrpcChannel _channel;

    public KmsTarget(string name, string socketPath)
    {
        Name = name;
        SocketPath = socketPath;
        _channel = UnixSocketChannel.Create(socketPath);
        Client = new KeyManagementService.KeyManagementServiceClient(_channel);
    }

    public string Name { get; }

    public string SocketPath { get; }

    public KeyManagementService.KeyManagementServiceClient Client { get; }

    private static DateTime NextDeadline() => DateTime.UtcNow + Deadline;

    public async Task<StatusResponse> StatusAsync() => await Client.StatusAsync(StatusRequest, deadline: NextDeadline());

    public async Task<EncryptResponse> EncryptAsync(EncryptRequest request) => await Client.EncryptAsync(request, deadline: NextDeadline());

    public async Task<DecryptResponse> DecryptAsync(DecryptRequest request) => await Client.DecryptAsync(request, deadline: NextDeadline());

    public static EncryptRequest NewEncryptRequest(byte[]? seed = null) =>
        new() { Plaintext = ByteString.CopyFrom(seed ?? RandomNumberGenerator.GetBytes(32)), Uid = Guid.NewGuid().ToString() };

    /// <summary>Exactly what the apiserver sends back for a stored object: Encrypt's ciphertext, key_id and annotations.</summary>
    public static DecryptRequest DecryptRequestFor(EncryptResponse stored)
    {
        ArgumentNullException.ThrowIfNull(stored);
        var request = new DecryptRequest { Ciphertext = stored.Ciphertext, KeyId = stored.KeyId, Uid = Guid.NewGuid().ToString() };
        request.Annotations.Add(stored.Annotations);
        return request;
    }

    public void Dispose() => _channel.Dispose();
}
