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
    private bool _prefaceDone;

    // A header block split over HEADERS + CONTINUATION frames is collected before it is rewritten.
    private byte[]? _block;
    private int _blockLength;
    private byte _headersFlags;
    private int _streamId;
    private byte[]? _priority;
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
                if (_block is not null)
                {
                    FlushOriginal(output); // not the CONTINUATION HTTP/2 requires: let Kestrel see and reject it
                }

                Copy(ref reader, FrameHeaderLength + length, output);
                continue;
            }

            var frame = new byte[FrameHeaderLength + length];
            reader.TryCopyTo(frame);
            reader.Advance(frame.Length);
            OnHeaderFrame(frame, output);
        }

        return reader.Position;
    }

    private void OnHeaderFrame(byte[] frame, IBufferWriter<byte> output)
    {
        var type = frame[3];
        var flags = frame[4];
        var payload = frame.AsSpan(FrameHeaderLength);
        if (type == FrameTypeHeaders)
        {
            if (_block is not null)
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

            _priority = null;
            if ((flags & FlagPriority) != 0)
            {
                if (end - start < 5)
                {
                    Write(output, frame);
                    return;
                }

                _priority = payload.Slice(start, 5).ToArray();
                start += 5;
            }

            _headersFlags = flags;
            _streamId = BinaryPrimitives.ReadInt32BigEndian(frame.AsSpan(5)) & 0x7fffffff;
            _block = new byte[Math.Max(end - start, 256)];
            _blockLength = 0;
            Append(payload[start..end]);
            _originalFrames.Add(frame);
        }
        else
        {
            var streamId = BinaryPrimitives.ReadInt32BigEndian(frame.AsSpan(5)) & 0x7fffffff;
            if (_block is null || streamId != _streamId || _blockLength + payload.Length > MaxBufferedHeaderBlock)
            {
                if (_block is not null)
                {
                    FlushOriginal(output);
                }

                Write(output, frame);
                return;
            }

            Append(payload);
            _originalFrames.Add(frame);
            flags = frame[4];
        }

        if ((flags & FlagEndHeaders) != 0)
        {
            var rewritten = HpackAuthorityRewriter.Rewrite(_block.AsSpan(0, _blockLength));
            if (rewritten is null)
            {
                FlushOriginal(output);
            }
            else
            {
                EmitBlock(output, rewritten);
            }
        }
    }

    private void Append(ReadOnlySpan<byte> fragment)
    {
        if (_blockLength + fragment.Length > _block!.Length)
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
            var room = MaxOutputFrame - (first && _priority is not null ? 5 : 0);
            var chunk = Math.Min(room, block.Length - offset);
            var last = offset + chunk == block.Length;
            byte flags = 0;
            if (first)
            {
                flags |= (byte)(_headersFlags & FlagEndStream);
                flags |= _priority is not null ? FlagPriority : (byte)0;
            }

            if (last)
            {
                flags |= FlagEndHeaders;
            }

            var payloadLength = chunk + (first && _priority is not null ? 5 : 0);
            var span = output.GetSpan(FrameHeaderLength + payloadLength);
            span[0] = (byte)(payloadLength >> 16);
            span[1] = (byte)(payloadLength >> 8);
            span[2] = (byte)payloadLength;
            span[3] = first ? FrameTypeHeaders : FrameTypeContinuation;
            span[4] = flags;
            BinaryPrimitives.WriteInt32BigEndian(span[5..], _streamId);
            var body = span.Slice(FrameHeaderLength, payloadLength);
            if (first && _priority is not null)
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
        _block = null;
        _blockLength = 0;
        _priority = null;
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
