using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;

namespace KmsPlugin.Transport;

/// <summary>
/// Lets kube-apiserver 1.27–1.31 talk to the plugin. Their grpc-go dials the Unix socket with the socket path as the
/// HTTP/2 <c>:authority</c> (e.g. <c>/var/run/kmsplugin/kms.sock</c>, or <c>%2Fvar%2Frun%2Fkmsplugin%2Fkms.sock</c>
/// from newer grpc-go), which Kestrel rejects as an invalid Host with RST_STREAM PROTOCOL_ERROR
/// (dotnet/aspnetcore#47043; kubernetes/kubernetes#126929 fixed the client only from 1.32). The authority means
/// nothing on a Unix socket, so this connection middleware rewrites every request's <c>:authority</c> to
/// <c>localhost</c> before Kestrel's HTTP/2 parser sees it. Everything else passes through byte for byte.
/// </summary>
/// <remarks>
/// Only client-to-server HEADERS/CONTINUATION frames are touched; the rewrite works on the HPACK instruction stream
/// (RFC 7541 section 6) without decoding strings: a literal whose name is static-table index 1 (<c>:authority</c>,
/// which grpc-go, grpc-dotnet and grpc-js all use) gets the value <c>localhost</c> with the same representation.
/// HPACK dynamic tables stay consistent: an entry inserted by the client keeps its index on Kestrel's side, and
/// Kestrel's copy is never larger than the client's (9 bytes of value, never more than the original), so Kestrel
/// evicts no earlier than the client and every index the client sends still resolves. Malformed input is passed on
/// unchanged for Kestrel to reject, so this layer never becomes a second parser whose opinion matters.
/// See docs/apiserver-compatibility.md for the measurements behind this choice.
/// </remarks>
public static class Http2AuthorityNormalizer
{
    /// <summary>The connection preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (RFC 9113 section 3.4).</summary>
    internal const int PrefaceLength = 24;
    internal const int FrameHeaderLength = 9;
    internal const byte FrameTypeHeaders = 0x1;
    internal const byte FrameTypeContinuation = 0x9;
    internal const byte FlagEndStream = 0x1;
    internal const byte FlagEndHeaders = 0x4;
    internal const byte FlagPadded = 0x8;
    internal const byte FlagPriority = 0x20;

    /// <summary>The smallest SETTINGS_MAX_FRAME_SIZE a peer may set (RFC 9113 section 6.5.2): always safe to send.</summary>
    internal const int MaxOutputFrame = 16_384;

    /// <summary>Header blocks larger than this are passed through untouched (Kestrel applies its own limits).</summary>
    internal const int MaxBufferedHeaderBlock = 256 * 1024;

    public static ConnectionDelegate Middleware(ConnectionDelegate next) => async context =>
    {
        var original = context.Transport;
        var rewritten = new Pipe(new PipeOptions(useSynchronizationContext: false, pauseWriterThreshold: 1024 * 1024, resumeWriterThreshold: 512 * 1024));
        context.Transport = new DuplexPipe(rewritten.Reader, original.Output);
        var pump = PumpAsync(original.Input, rewritten.Writer);
        try
        {
            await next(context);
        }
        finally
        {
            context.Transport = original;
            await rewritten.Reader.CompleteAsync();

            // Stop the pump before completing the reader it reads from: completing it under a pending read made
            // the pump's AdvanceTo throw "Reading is not allowed after reader was completed" at shutdown.
            original.Input.CancelPendingRead();
            await pump;
            await original.Input.CompleteAsync();
        }
    };

    private static async Task PumpAsync(PipeReader input, PipeWriter output)
    {
        var state = new Http2HeaderRewriter();
        Exception? error = null;
        try
        {
            while (true)
            {
                ReadResult result;
                try
                {
                    result = await input.ReadAsync();
                }
                catch (InvalidOperationException)
                {
                    break; // the reader was completed by the connection's shutdown
                }

                if (result.IsCanceled)
                {
                    break; // the connection is closing (CancelPendingRead above)
                }

                var buffer = result.Buffer;
                var consumed = state.Process(buffer, output);
                input.AdvanceTo(consumed, buffer.End);
                var flush = await output.FlushAsync();
                if (flush.IsCompleted || result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception e) when (e is IOException or ConnectionResetException or OperationCanceledException)
        {
            error = e;
        }

        await output.CompleteAsync(error);
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
