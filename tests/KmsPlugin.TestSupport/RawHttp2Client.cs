using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;

namespace KmsPlugin.TestSupport;

/// <summary>
/// A deliberately raw HTTP/2 client (RFC 9113 frames, hand-built HPACK) that sends exactly the header
/// representations grpc-go uses, including a path-like <c>:authority</c> and dynamic-table references — things a
/// high-level client library will not let a test control.
/// </summary>
public sealed class RawHttp2Client : IAsyncDisposable
{
    private static readonly byte[] Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<int, StreamState> _streams = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _reader;

    public enum AuthorityMode
    {
        IncrementalIndexing,
        WithoutIndexing,
        NeverIndexed,
        IndexedFromDynamicTable,
    }

    private RawHttp2Client(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = Task.Run(ReadLoopAsync);
    }

    public static async Task<RawHttp2Client> ConnectAsync(string socketPath)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
        var client = new RawHttp2Client(socket);
        await client.SendRawAsync(Preface);
        await client.SendFrameAsync(0x4, 0, 0, []); // empty SETTINGS
        return client;
    }

    public async Task SendRawAsync(byte[] bytes)
    {
        await _writeLock.WaitAsync();
        try
        {
            await _stream.WriteAsync(bytes);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public Task WaitForCloseAsync() => _closed.Task.WaitAsync(TimeSpan.FromSeconds(10));

    /// <summary>One gRPC unary call; returns the response message bytes, or throws with the RST_STREAM/grpc error.</summary>
    public async Task<byte[]> UnaryAsync(int streamId, string path, byte[] message, AuthorityMode mode, string? authority,
        bool padded = false, bool priority = false, int continuationChunk = 0)
    {
        var block = new List<byte> { 0x83, 0x86 }; // :method POST (static 3), :scheme http (static 6)
        block.Add(0x04); // :path, literal without indexing, name = static 4
        AddString(block, path);
        switch (mode)
        {
            case AuthorityMode.IndexedFromDynamicTable:
                block.Add(0x80 | 62); // the newest dynamic-table entry
                break;
            default:
                block.Add(mode switch
                {
                    AuthorityMode.IncrementalIndexing => (byte)0x41,
                    AuthorityMode.WithoutIndexing => (byte)0x01,
                    _ => (byte)0x11,
                });
                AddString(block, authority!);
                break;
        }

        block.AddRange([0x0F, 0x10]); // content-type: static 31, 4-bit prefix
        AddString(block, "application/grpc");
        block.Add(0x00); // te: trailers, literal with a new name
        AddString(block, "te");
        AddString(block, "trailers");

        var state = new StreamState();
        _streams[streamId] = state;
        var blockBytes = block.ToArray();
        var fragments = continuationChunk > 0 ? blockBytes.Chunk(continuationChunk).ToList() : [blockBytes];
        for (var i = 0; i < fragments.Count; i++)
        {
            var last = i == fragments.Count - 1;
            if (i == 0)
            {
                var payload = new List<byte>();
                byte flags = last ? (byte)0x4 : (byte)0;
                if (padded)
                {
                    flags |= 0x8;
                    payload.Add(3);
                }

                if (priority)
                {
                    flags |= 0x20;
                    payload.AddRange([0, 0, 0, 0, 15]);
                }

                payload.AddRange(fragments[0]);
                if (padded)
                {
                    payload.AddRange([0, 0, 0]);
                }

                await SendFrameAsync(0x1, flags, streamId, [.. payload]);
            }
            else
            {
                await SendFrameAsync(0x9, last ? (byte)0x4 : (byte)0, streamId, fragments[i]);
            }
        }

        var data = new byte[5 + message.Length];
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(1), (uint)message.Length);
        message.CopyTo(data, 5);
        await SendFrameAsync(0x0, 0x1, streamId, data); // DATA, END_STREAM

        await state.Done.Task.WaitAsync(TimeSpan.FromSeconds(10));
        if (state.ResetCode is { } code)
        {
            throw new InvalidOperationException($"stream {streamId} was reset with HTTP/2 error code {code}");
        }

        var body = state.Data.ToArray();
        if (body.Length < 5)
        {
            throw new InvalidOperationException($"stream {streamId} ended without a gRPC message (the call failed)");
        }

        return body[5..];
    }

    private static void AddString(List<byte> block, string value)
    {
        var bytes = Encoding.ASCII.GetBytes(value);
        if (bytes.Length > 126)
        {
            throw new ArgumentException("keep test strings short", nameof(value));
        }

        block.Add((byte)bytes.Length); // H = 0: raw octets
        block.AddRange(bytes);
    }

    private async Task SendFrameAsync(byte type, byte flags, int streamId, byte[] payload)
    {
        var frame = new byte[9 + payload.Length];
        frame[0] = (byte)(payload.Length >> 16);
        frame[1] = (byte)(payload.Length >> 8);
        frame[2] = (byte)payload.Length;
        frame[3] = type;
        frame[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(5), streamId);
        payload.CopyTo(frame, 9);
        await SendRawAsync(frame);
    }

    private async Task ReadLoopAsync()
    {
        var header = new byte[9];
        try
        {
            while (true)
            {
                await _stream.ReadExactlyAsync(header);
                var length = (header[0] << 16) | (header[1] << 8) | header[2];
                var type = header[3];
                var flags = header[4];
                var streamId = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(5)) & 0x7fffffff;
                var payload = new byte[length];
                await _stream.ReadExactlyAsync(payload);
                _streams.TryGetValue(streamId, out var state);
                switch (type)
                {
                    case 0x0 when state is not null: // DATA
                        state.Data.AddRange(payload);
                        if ((flags & 0x1) != 0)
                        {
                            state.Done.TrySetResult();
                        }

                        break;
                    case 0x1 when state is not null && (flags & 0x1) != 0: // trailers (END_STREAM)
                        state.Done.TrySetResult();
                        break;
                    case 0x3 when state is not null: // RST_STREAM
                        state.ResetCode = BinaryPrimitives.ReadUInt32BigEndian(payload);
                        state.Done.TrySetResult();
                        break;
                    case 0x4 when (flags & 0x1) == 0: // SETTINGS: acknowledge
                        await SendFrameAsync(0x4, 0x1, 0, []);
                        break;
                    case 0x6 when (flags & 0x1) == 0: // PING: answer
                        await SendFrameAsync(0x6, 0x1, 0, payload);
                        break;
                    case 0x7: // GOAWAY
                        foreach (var pending in _streams.Values)
                        {
                            pending.Done.TrySetResult();
                        }

                        break;
                    default:
                        break;
                }
            }
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or ObjectDisposedException or SocketException)
        {
            foreach (var pending in _streams.Values)
            {
                pending.Done.TrySetResult();
            }

            _closed.TrySetResult();
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // The server closed the connection first (e.g. after a protocol error a test provoked): nothing to shut down.
        }

        await _stream.DisposeAsync();
        await _reader;
        _writeLock.Dispose();
    }

    private sealed class StreamState
    {
        public List<byte> Data { get; } = [];

        public uint? ResetCode { get; set; }

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
