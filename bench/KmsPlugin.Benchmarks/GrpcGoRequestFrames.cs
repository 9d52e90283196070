using System.Buffers.Binary;
using System.Text;

namespace KmsPlugin.Benchmarks;

/// <summary>How a request's HEADERS frame carries <c>:authority</c>.</summary>
public enum AuthorityHeader
{
    /// <summary>Literal <c>localhost</c> (kube-apiserver 1.32+, first call on a connection).</summary>
    LiteralLocalhost,

    /// <summary>Literal socket path <c>/var/run/kmsplugin/kms.sock</c> (kube-apiserver 1.27–1.31, first call).</summary>
    LiteralSocketPath,

    /// <summary>Literal percent-encoded socket path (newer grpc-go in kube-apiserver 1.27–1.31, first call).</summary>
    LiteralEncodedPath,

    /// <summary>An index into the HPACK dynamic table (every later call on the connection, whatever the value).</summary>
    Indexed,
}

/// <summary>
/// The client-to-server bytes of gRPC unary calls as grpc-go (kube-apiserver's client) frames them over HTTP/2
/// (RFC 9113): one HEADERS frame with END_HEADERS, then one DATA frame with END_STREAM holding the length-prefixed
/// message. The HPACK header block uses the representations of tests/KmsPlugin.TestSupport/RawHttp2Client.cs (the
/// client the end-to-end :authority tests use): raw octets (H = 0), :method/:scheme indexed from the static table,
/// :path a literal without indexing, and <c>:authority</c> either a literal with incremental indexing (the first call,
/// RFC 7541 section 6.2.1) or dynamic-table index 62 (every later call, section 6.1: grpc-go's encoder finds the
/// exact entry it inserted). It adds the other headers grpc-go sends on every call — <c>user-agent</c> and the
/// <c>grpc-timeout</c> of the apiserver's 3 s deadline — so the block has a realistic length for the rewriter to walk.
/// </summary>
internal static class GrpcGoRequestFrames
{
    public const string SocketPath = "/var/run/kmsplugin/kms.sock";
    public const string PercentEncodedSocketPath = "%2Fvar%2Frun%2Fkmsplugin%2Fkms.sock";

    private const byte FrameData = 0x0;
    private const byte FrameHeaders = 0x1;
    private const byte FrameSettings = 0x4;
    private const byte FlagEndStream = 0x1;
    private const byte FlagEndHeaders = 0x4;

    /// <summary>The connection preface and an empty SETTINGS frame: what a client sends before its first request.</summary>
    public static byte[] ConnectionStart() => [.. "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8, .. Frame(FrameSettings, 0, 0, [])];

    /// <summary>HEADERS + DATA of one unary call on <paramref name="streamId"/>.</summary>
    public static byte[] Request(int streamId, string path, AuthorityHeader authority, ReadOnlySpan<byte> message)
    {
        var block = new List<byte> { 0x83, 0x86 }; // :method POST (static 3), :scheme http (static 6)
        block.Add(0x04); // :path: literal without indexing, name = static 4
        AddString(block, path);
        if (authority == AuthorityHeader.Indexed)
        {
            block.Add(0x80 | 62); // the newest dynamic-table entry: the authority the first call inserted
        }
        else
        {
            block.Add(0x41); // :authority: literal with incremental indexing, name = static 1
            AddString(block, authority switch
            {
                AuthorityHeader.LiteralLocalhost => "localhost",
                AuthorityHeader.LiteralSocketPath => SocketPath,
                _ => PercentEncodedSocketPath,
            });
        }

        block.AddRange([0x0F, 0x10]); // content-type: static 31, 4-bit prefix (15 + 16)
        AddString(block, "application/grpc");
        block.AddRange([0x0F, 0x2B]); // user-agent: static 58 (15 + 43)
        AddString(block, "grpc-go/1.65.0");
        block.Add(0x00); // te: trailers, literal with a new name
        AddString(block, "te");
        AddString(block, "trailers");
        block.Add(0x00); // grpc-timeout, literal with a new name (not in the static table)
        AddString(block, "grpc-timeout");
        AddString(block, "2999985u");

        var data = new byte[5 + message.Length]; // gRPC message prefix: not compressed, big-endian length
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(1), (uint)message.Length);
        message.CopyTo(data.AsSpan(5));
        return [.. Frame(FrameHeaders, FlagEndHeaders, streamId, [.. block]), .. Frame(FrameData, FlagEndStream, streamId, data)];
    }

    private static void AddString(List<byte> block, string value)
    {
        var bytes = Encoding.ASCII.GetBytes(value);
        if (bytes.Length > 126)
        {
            throw new ArgumentException("the 7-bit length prefix fits strings up to 126 bytes", nameof(value));
        }

        block.Add((byte)bytes.Length); // H = 0: raw octets
        block.AddRange(bytes);
    }

    private static byte[] Frame(byte type, byte flags, int streamId, byte[] payload)
    {
        var frame = new byte[9 + payload.Length];
        frame[0] = (byte)(payload.Length >> 16);
        frame[1] = (byte)(payload.Length >> 8);
        frame[2] = (byte)payload.Length;
        frame[3] = type;
        frame[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(5), streamId);
        payload.CopyTo(frame, 9);
        return frame;
    }
}
