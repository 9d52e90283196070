using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.Protocol.V2;
using KmsPlugin.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging.Abstractions;

namespace KmsPlugin.Benchmarks;

/// <summary>The KMS v2 call whose request the client sends.</summary>
public enum KmsCall
{
    Encrypt,
    Decrypt,
}

/// <summary>
/// What the <c>:authority</c> connection middleware (kms-plugin/KmsPlugin/Transport/Http2AuthorityNormalizer.cs) costs
/// per request, on the bytes grpc-go sends for one KMS v2 call (<see cref="GrpcGoRequestFrames"/>: HEADERS + DATA with a
/// real Encrypt or Decrypt request message):
/// <list type="bullet">
/// <item><c>Process</c>: <c>Http2HeaderRewriter.Process</c> alone — frame walk, header-block copy, HPACK rewrite — into a
/// reused buffer: the CPU the middleware adds per request.</item>
/// <item><c>OnePipe</c>: the baseline without the middleware — the bytes written into one <see cref="Pipe"/> (as Kestrel's
/// socket transport does) and read out by a reader already waiting (as Kestrel's HTTP/2 loop does).</item>
/// <item><c>Middleware</c>: the same bytes written into the connection's input pipe, pumped by the public
/// <see cref="Http2AuthorityNormalizer.Middleware"/> (its pump task on a real in-memory connection) into the rewritten
/// pipe, and read out there by a waiting reader. The difference to <c>OnePipe</c> is the middleware's whole cost per
/// request, including the second pipe's copy and the extra thread-pool hop.</item>
/// </list>
/// The pipes use their default schedulers (thread pool), as the socket transport's application side and the
/// middleware's own pipe do, so each hop is a real dispatch (the threading diagnoser counts them: one work item per
/// write without the middleware, two with it: the pump's and the reader's); the pipe round trips therefore measure
/// latency, with the CPU of the rewrite inside it given by <c>Process</c>. The <c>x16</c> variants write 16 requests
/// at once, as one socket read delivers them when the apiserver has many calls in flight (kube-apiserver multiplexes
/// them on one connection), and report the time per request: the hops are then shared by the 16.
/// </summary>
[MemoryDiagnoser]
[ThreadingDiagnoser]
public class AuthorityNormalizerBenchmarks
{
    private const int StreamId = 1;
    private const int Batch = 16;

    private byte[] _request = null!;
    private int _rewrittenLength;
    private byte[] _batch = null!;
    private Http2HeaderRewriter _rewriter = null!;
    private ArrayBufferWriter<byte> _rewriterOutput = null!;
    private Pipe _direct = null!;
    private Pipe _socketInput = null!;
    private Pipe _socketOutput = null!;
    private PipeReader _rewritten = null!;
    private TaskCompletionSource _connectionClosed = null!;
    private Task _connection = null!;

    [ParamsAllValues]
    public AuthorityHeader Authority { get; set; }

    [ParamsAllValues]
    public KmsCall Call { get; set; }

    /// <summary>The request's bytes after the rewrite, as the last <see cref="Process"/> left them (for smoke tests).</summary>
    internal ReadOnlyMemory<byte> LastProcessed => _rewriterOutput.WrittenMemory;

    /// <summary>The request's bytes as the client sends them.</summary>
    internal ReadOnlyMemory<byte> RequestBytes => _request;

    /// <summary>How many bytes Kestrel reads for one request once the middleware has rewritten it.</summary>
    internal int RewrittenLength => _rewrittenLength;

    [GlobalSetup]
    public void Setup()
    {
        var (path, message) = Call == KmsCall.Encrypt
            ? ("/v2.KeyManagementService/Encrypt", EncryptMessage())
            : ("/v2.KeyManagementService/Decrypt", DecryptMessage());
        _request = GrpcGoRequestFrames.Request(StreamId, path, Authority, message);
        _batch = [.. Enumerable.Range(0, Batch).SelectMany(i => GrpcGoRequestFrames.Request(StreamId + (2 * i), path, Authority, message))];

        _rewriter = new Http2HeaderRewriter();
        _rewriterOutput = new ArrayBufferWriter<byte>(4096);
        var start = GrpcGoRequestFrames.ConnectionStart();
        ProcessWhole(_rewriter, start, _rewriterOutput);
        _rewriterOutput.ResetWrittenCount();
        ProcessWhole(_rewriter, _request, _rewriterOutput);
        _rewrittenLength = _rewriterOutput.WrittenCount;

        _direct = new Pipe(new PipeOptions(useSynchronizationContext: false));

        // One connection through the middleware for the whole run: the pump keeps its rewriter state across requests,
        // as it does across a real connection's requests.
        _socketInput = new Pipe(new PipeOptions(useSynchronizationContext: false));
        _socketOutput = new Pipe(new PipeOptions(useSynchronizationContext: false));
        _connectionClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var transport = new TaskCompletionSource<PipeReader>(TaskCreationOptions.RunContinuationsAsynchronously);
        var context = new DefaultConnectionContext("bench") { Transport = new DuplexPipe(_socketInput.Reader, _socketOutput.Writer) };
        _connection = Http2AuthorityNormalizer.Middleware(async rewritten =>
        {
            transport.SetResult(rewritten.Transport.Input); // where Kestrel's HTTP/2 connection would read
            await _connectionClosed.Task;
        })(context);
        _rewritten = transport.Task.GetAwaiter().GetResult();
        RoundTripAsync(_socketInput.Writer, _rewritten, start, start.Length).GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _connectionClosed.SetResult();
        _connection.GetAwaiter().GetResult();
        _socketInput.Writer.Complete();
        _socketOutput.Writer.Complete();
        _socketOutput.Reader.Complete();
        _direct.Writer.Complete();
        _direct.Reader.Complete();
    }

    [Benchmark(Description = "Http2HeaderRewriter.Process (rewrite only)")]
    public int Process()
    {
        _rewriterOutput.ResetWrittenCount();
        _rewriter.Process(new ReadOnlySequence<byte>(_request), _rewriterOutput);
        return _rewriterOutput.WrittenCount;
    }

    [Benchmark(Description = "one Pipe, no middleware (baseline)")]
    public Task<long> OnePipe() => RoundTripAsync(_direct.Writer, _direct.Reader, _request, _request.Length);

    [Benchmark(Description = "through Http2AuthorityNormalizer.Middleware")]
    public Task<long> Middleware() => RoundTripAsync(_socketInput.Writer, _rewritten, _request, _rewrittenLength);

    [Benchmark(Description = "one Pipe, no middleware (baseline), x16", OperationsPerInvoke = Batch)]
    public Task<long> OnePipeBatch() => RoundTripAsync(_direct.Writer, _direct.Reader, _batch, _batch.Length);

    [Benchmark(Description = "through Http2AuthorityNormalizer.Middleware, x16", OperationsPerInvoke = Batch)]
    public Task<long> MiddlewareBatch() => RoundTripAsync(_socketInput.Writer, _rewritten, _batch, Batch * _rewrittenLength);

    /// <summary>
    /// Writes <paramref name="bytes"/> and reads until <paramref name="expected"/> bytes came out. The reader is waiting
    /// (its continuation registered) before the write, as Kestrel's read loop waits on the socket's pipe: the flush then
    /// dispatches it to the thread pool as the socket transport's flush dispatches Kestrel.
    /// </summary>
    private static async Task<long> RoundTripAsync(PipeWriter writer, PipeReader reader, byte[] bytes, int expected)
    {
        var received = ReadAsync(reader, expected);
        var flush = await writer.WriteAsync(bytes);
        if (flush.IsCompleted)
        {
            throw new InvalidOperationException("the pipe's reader has gone");
        }

        return await received;
    }

    private static async Task<long> ReadAsync(PipeReader reader, int expected)
    {
        long received = 0;
        while (received < expected)
        {
            var result = await reader.ReadAsync();
            received += result.Buffer.Length;
            reader.AdvanceTo(result.Buffer.End);
            if (received < expected && (result.IsCompleted || result.IsCanceled))
            {
                throw new InvalidOperationException($"the pipe ended after {received} of {expected} bytes");
            }
        }

        return received;
    }

    private static void ProcessWhole(Http2HeaderRewriter rewriter, byte[] bytes, IBufferWriter<byte> output)
    {
        var sequence = new ReadOnlySequence<byte>(bytes);
        var consumed = sequence.Slice(0, rewriter.Process(sequence, output)).Length;
        if (consumed != bytes.Length)
        {
            throw new InvalidOperationException($"the rewriter consumed {consumed} of {bytes.Length} bytes: the frames are not what a client sends");
        }
    }

    /// <summary>An Encrypt request as kube-apiserver sends it: a fresh 32-byte seed and a UID.</summary>
    private static byte[] EncryptMessage() =>
        new EncryptRequest { Plaintext = ByteString.CopyFrom(RandomNumberGenerator.GetBytes(32)), Uid = Guid.NewGuid().ToString() }.ToByteArray();

    /// <summary>A Decrypt request for a seed the plugin's envelope core sealed: its ciphertext, key_id and annotations.</summary>
    private static byte[] DecryptMessage()
    {
        using var keys = new BenchKeys();
        using var envelope = new EnvelopeService(new RootKeyRing([keys.RootKey]), new EnvelopeOptions(), TimeProvider.System, CsprngRandomSource.Instance,
            NullLogger.Instance);
        var stored = envelope.EncryptAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None).GetAwaiter().GetResult();
        var request = new DecryptRequest { Ciphertext = ByteString.CopyFrom(stored.Ciphertext), KeyId = stored.KeyId, Uid = Guid.NewGuid().ToString() };
        foreach (var (key, value) in stored.Annotations)
        {
            request.Annotations.Add(key, ByteString.CopyFrom(value));
        }

        return request.ToByteArray();
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
