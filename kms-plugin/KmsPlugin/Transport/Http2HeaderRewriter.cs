using System.Buffers;
using System.Buffers.Binary;
using static KmsPlugin.Transport.Http2AuthorityNormalizer;

namespace KmsPlugin.Transport;

/// <summary>
/// The per-connection state of <see cref="Http2AuthorityNormalizer"/>: walks the client's byte stream frame by
/// frame (RFC 9113 section 4.1) and rewrites the <c>:authority</c> of each header block.
/// </summary>
internal sealed class Http2HeaderRewriter
{
    /// <summary>Buffers that grew past this (a client sending huge header blocks) are dropped after use, not kept per connection.</summary>
    private const int RetainedBufferLimit = 16 * 1024;

    private bool _prefaceDone;

    // One frame, copied out of the socket's buffer so HPACK can be walked on a contiguous span. Reused: in steady state
    // (grpc-go names :authority by a dynamic-table index, nothing to rewrite) the middleware allocates nothing per call.
    private byte[] _frame = new byte[512];

    // The header block being collected (one HEADERS frame, or HEADERS + CONTINUATION frames); reused like _frame.
    private byte[] _block = new byte[512];
    private int _blockLength;
    private bool _collecting;
    private byte _headersFlags;
    private int _streamId;
    private readonly byte[] _priority = new byte[5];
    private bool _hasPriority;

    // Only when a block spans several frames: the frames as received, written unchanged if nothing is rewritten.
    private readonly List<byte[]> _originalFrames = [];

    /// <summary>Writes every complete frame in <paramref name="buffer"/> (rewritten where needed); returns how far it got.</summary>
    public SequencePosition Process(ReadOnlySequence<byte> buffer, IBufferWriter<byte> output)
    {
        var reader = new SequenceReader<byte>(buffer);
        if (!_prefaceDone)
        {
            if (reader.Remaining < PrefaceLength)
            {
                return reader.Position;
            }

            Copy(ref reader, PrefaceLength, output);
            _prefaceDone = true;
        }

        Span<byte> header = stackalloc byte[FrameHeaderLength];
        while (reader.Remaining >= FrameHeaderLength)
        {
            reader.TryCopyTo(header);
            var length = (header[0] << 16) | (header[1] << 8) | header[2];
            var type = header[3];
            if (reader.Remaining < FrameHeaderLength + length)
            {
                break;
            }

            if (type is not (FrameTypeHeaders or FrameTypeContinuation) || length > MaxBufferedHeaderBlock)
            {
                if (_collecting)
                {
                    FlushOriginal(output); // not the CONTINUATION HTTP/2 requires: let Kestrel see and reject it
                }

                Copy(ref reader, FrameHeaderLength + length, output);
                continue;
            }

            var frameLength = FrameHeaderLength + length;
            if (_frame.Length < frameLength)
            {
                _frame = new byte[Math.Max(frameLength, _frame.Length * 2)];
            }

            var frame = _frame.AsSpan(0, frameLength);
            reader.TryCopyTo(frame);
            reader.Advance(frameLength);
            OnHeaderFrame(frame, output);
            if (_frame.Length > RetainedBufferLimit)
            {
                _frame = new byte[512];
            }
        }

        return reader.Position;
    }

    private void OnHeaderFrame(ReadOnlySpan<byte> frame, IBufferWriter<byte> output)
    {
        var type = frame[3];
        var flags = frame[4];
        var payload = frame[FrameHeaderLength..];
        if (type == FrameTypeHeaders)
        {
            if (_collecting)
            {
                FlushOriginal(output);
            }

            // Strip padding and priority (RFC 9113 section 6.2); keep priority to re-emit it.
            var start = 0;
            var end = payload.Length;
            if ((flags & FlagPadded) != 0)
            {
                if (payload.Length < 1 || payload[0] >= payload.Length)
                {
                    Write(output, frame);
                    return;
                }

                end -= payload[0];
                start = 1;
            }

            _hasPriority = false;
            if ((flags & FlagPriority) != 0)
            {
                if (end - start < 5)
                {
                    Write(output, frame);
                    return;
                }

                payload.Slice(start, 5).CopyTo(_priority);
                _hasPriority = true;
                start += 5;
            }

            _headersFlags = flags;
            _streamId = BinaryPrimitives.ReadInt32BigEndian(frame[5..]) & 0x7fffffff;
            _collecting = true;
            _blockLength = 0;
            Append(payload[start..end]);
        }
        else
        {
            var streamId = BinaryPrimitives.ReadInt32BigEndian(frame[5..]) & 0x7fffffff;
            if (!_collecting || streamId != _streamId || _blockLength + payload.Length > MaxBufferedHeaderBlock)
            {
                if (_collecting)
                {
                    FlushOriginal(output);
                }

                Write(output, frame);
                return;
            }

            Append(payload);
        }

        if ((flags & FlagEndHeaders) == 0)
        {
            _originalFrames.Add(frame.ToArray()); // the block goes on in a CONTINUATION: keep this frame as it came
            return;
        }

        var rewritten = HpackAuthorityRewriter.Rewrite(_block.AsSpan(0, _blockLength));
        if (rewritten is null)
        {
            FlushOriginal(output);
            Write(output, frame);
        }
        else
        {
            EmitBlock(output, rewritten);
        }
    }

    private void Append(ReadOnlySpan<byte> fragment)
    {
        if (_blockLength + fragment.Length > _block.Length)
        {
            Array.Resize(ref _block, Math.Max(_block.Length * 2, _blockLength + fragment.Length));
        }

        fragment.CopyTo(_block.AsSpan(_blockLength));
        _blockLength += fragment.Length;
    }

    private void EmitBlock(IBufferWriter<byte> output, byte[] block)
    {
        var offset = 0;
        var first = true;
        do
        {
            var room = MaxOutputFrame - (first && _hasPriority ? 5 : 0);
            var chunk = Math.Min(room, block.Length - offset);
            var last = offset + chunk == block.Length;
            byte flags = 0;
            if (first)
            {
                flags |= (byte)(_headersFlags & FlagEndStream);
                flags |= _hasPriority ? FlagPriority : (byte)0;
            }

            if (last)
            {
                flags |= FlagEndHeaders;
            }

            var payloadLength = chunk + (first && _hasPriority ? 5 : 0);
            var span = output.GetSpan(FrameHeaderLength + payloadLength);
            span[0] = (byte)(payloadLength >> 16);
            span[1] = (byte)(payloadLength >> 8);
            span[2] = (byte)payloadLength;
            span[3] = first ? FrameTypeHeaders : FrameTypeContinuation;
            span[4] = flags;
            BinaryPrimitives.WriteInt32BigEndian(span[5..], _streamId);
            var body = span.Slice(FrameHeaderLength, payloadLength);
            if (first && _hasPriority)
            {
                _priority.CopyTo(body);
                body = body[5..];
            }

            block.AsSpan(offset, chunk).CopyTo(body);
            output.Advance(FrameHeaderLength + payloadLength);
            offset += chunk;
            first = false;
        }
        while (offset < block.Length);

        Reset();
    }

    private void FlushOriginal(IBufferWriter<byte> output)
    {
        foreach (var frame in _originalFrames)
        {
            Write(output, frame);
        }

        Reset();
    }

    private void Reset()
    {
        _originalFrames.Clear();
        _collecting = false;
        _blockLength = 0;
        _hasPriority = false;
        if (_block.Length > RetainedBufferLimit)
        {
            _block = new byte[512];
        }
    }

    private static void Write(IBufferWriter<byte> output, ReadOnlySpan<byte> bytes) => output.Write(bytes);

    private static void Copy(ref SequenceReader<byte> reader, int count, IBufferWriter<byte> output)
    {
        var slice = reader.UnreadSequence.Slice(0, count);
        foreach (var segment in slice)
        {
            output.Write(segment.Span);
        }

        reader.Advance(count);
    }
}
