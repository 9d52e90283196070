using System.Buffers;
using KmsPlugin.Transport;

namespace KmsPlugin.Tests.Unit;

public sealed class HpackAuthorityRewriterTests
{
    private static readonly byte[] LocalhostLiteral = [0x09, .. "localhost"u8];

    [Theory]
    [InlineData(0x41)] // with incremental indexing
    [InlineData(0x01)] // without indexing
    [InlineData(0x11)] // never indexed
    public void An_authority_literal_becomes_localhost_in_the_same_representation(byte representation)
    {
        byte[] block = [0x83, representation, 0x05, .. "/a/b."u8, 0x86];
        var rewritten = HpackAuthorityRewriter.Rewrite(block);
        Assert.Equal([0x83, representation, .. LocalhostLiteral, 0x86], rewritten);
    }

    [Fact]
    public void A_huffman_coded_authority_is_replaced_without_being_decoded()
    {
        byte[] block = [0x41, 0x83, 0xAA, 0xBB, 0xCC, 0x82];
        Assert.Equal([0x41, .. LocalhostLiteral, 0x82], HpackAuthorityRewriter.Rewrite(block));
    }

    [Fact]
    public void Blocks_without_an_authority_literal_are_left_alone()
    {
        // :method POST, indexed dynamic entry 62, literal content-type (static 31 via a multi-byte integer), size update
        byte[] block = [0x83, 0xBE, 0x0F, 0x10, 0x03, .. "a/b"u8, 0x3F, 0xE1, 0x1F];
        Assert.Null(HpackAuthorityRewriter.Rewrite(block));
    }

    [Theory]
    [InlineData(new byte[] { 0x41, 0x05, 0x61 })] // value shorter than its length
    [InlineData(new byte[] { 0xFF })] // integer cut short
    [InlineData(new byte[] { 0x40, 0x7F })] // new name, length cut short
    public void Malformed_blocks_are_passed_on_unchanged_for_Kestrel_to_reject(byte[] block) => Assert.Null(HpackAuthorityRewriter.Rewrite(block));

    [Fact]
    public void Random_blocks_never_throw()
    {
        var random = new Random(7);
        for (var i = 0; i < 100_000; i++)
        {
            var block = new byte[random.Next(0, 64)];
            random.NextBytes(block);
            _ = HpackAuthorityRewriter.Rewrite(block);
        }
    }

    [Fact]
    public void Random_frame_streams_never_throw_and_non_header_frames_pass_through_byte_for_byte()
    {
        var random = new Random(11);
        for (var run = 0; run < 2_000; run++)
        {
            var input = new List<byte>("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());
            var dataOnly = random.Next(2) == 0;
            for (var f = 0; f < random.Next(1, 8); f++)
            {
                var payload = new byte[random.Next(0, 40)];
                random.NextBytes(payload);
                var type = dataOnly ? (byte)0x0 : (byte)random.Next(0, 10);
                input.AddRange([(byte)0, (byte)0, (byte)payload.Length, type, (byte)random.Next(256), 0, 0, 0, (byte)random.Next(1, 4)]);
                input.AddRange(payload);
            }

            var output = new ArrayBufferWriter<byte>();
            var rewriter = new Http2HeaderRewriter();
            var bytes = input.ToArray();
            var position = rewriter.Process(new ReadOnlySequence<byte>(bytes), output);
            Assert.Equal(bytes.Length, new ReadOnlySequence<byte>(bytes).Slice(0, position).Length);
            if (dataOnly)
            {
                Assert.Equal(bytes, output.WrittenSpan.ToArray());
            }
        }
    }

    /// <summary>
    /// Valid streams of header blocks (split over HEADERS + CONTINUATION, with padding and priority, interleaved with
    /// other frames) fed in random pieces, as socket reads deliver them: blocks without an :authority literal leave
    /// byte for byte (the steady state of a grpc-go connection), blocks with one leave as the same block with
    /// <c>localhost</c>, and the per-connection buffers the rewriter reuses never leak one block into the next.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Header_blocks_fed_in_random_pieces_come_out_unchanged_or_with_only_the_authority_rewritten(bool withAuthority)
    {
        var random = new Random(withAuthority ? 23 : 29);
        for (var run = 0; run < 2_000; run++)
        {
            var input = new List<byte>("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());
            var expectedBlocks = new List<(int StreamId, byte[] Block)>();
            var otherFrames = new List<byte[]>();
            for (var b = 0; b < random.Next(1, 6); b++)
            {
                var streamId = (2 * b) + 1;
                var block = RandomBlock(random, withAuthority);
                expectedBlocks.Add((streamId, withAuthority ? HpackAuthorityRewriter.Rewrite(block)! : block));
                AddHeaderFrames(input, random, streamId, block);
                var data = Frame(0x0, 0x1, streamId, RandomBytes(random, random.Next(0, 30)));
                otherFrames.Add(data);
                input.AddRange(data);
            }

            var bytes = input.ToArray();
            var output = FeedInPieces(new Http2HeaderRewriter(), bytes, random);
            if (!withAuthority)
            {
                Assert.Equal(bytes, output);
                continue;
            }

            var (blocks, others) = ParseFrames(output);
            Assert.Equal(expectedBlocks.Count, blocks.Count);
            for (var i = 0; i < blocks.Count; i++)
            {
                Assert.Equal(expectedBlocks[i].StreamId, blocks[i].StreamId);
                Assert.Equal(expectedBlocks[i].Block, blocks[i].Block);
            }

            Assert.Equal(otherFrames, others);
        }
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>A valid HPACK block of grpc-go-like fields: indexed fields, literals by static name (never :authority unless asked), a long value.</summary>
    private static byte[] RandomBlock(Random random, bool withAuthority)
    {
        var block = new List<byte> { 0x83, 0x86 };
        var authorityAt = withAuthority ? random.Next(0, 4) : -1;
        for (var f = 0; f < 4; f++)
        {
            if (f == authorityAt)
            {
                block.Add(new byte[] { 0x41, 0x01, 0x11 }[random.Next(3)]);
                AddLiteral(block, "/var/run/kmsplugin/kms.sock");
            }

            switch (random.Next(4))
            {
                case 0:
                    block.Add((byte)(0x80 | random.Next(2, 70))); // indexed (static or dynamic)
                    break;
                case 1:
                    block.Add(0x04); // :path, without indexing, static name 4
                    AddLiteral(block, "/v2.KeyManagementService/Decrypt");
                    break;
                case 2:
                    block.Add(0x0F); // a static name past index 14 (multi-byte integer), without indexing
                    block.Add((byte)random.Next(1, 40));
                    AddLiteral(block, new string('x', random.Next(0, 200)));
                    break;
                default:
                    block.Add(0x40); // a new name, with incremental indexing
                    AddLiteral(block, "grpc-timeout");
                    AddLiteral(block, "2999m");
                    break;
            }
        }

        return [.. block];
    }

    private static void AddLiteral(List<byte> block, string value)
    {
        // RFC 7541 5.1 integer with a 7-bit prefix (H = 0), then raw octets.
        var length = value.Length;
        if (length < 127)
        {
            block.Add((byte)length);
        }
        else
        {
            block.Add(127);
            length -= 127;
            while (length >= 128)
            {
                block.Add((byte)((length & 0x7F) | 0x80));
                length >>= 7;
            }

            block.Add((byte)length);
        }

        block.AddRange(System.Text.Encoding.ASCII.GetBytes(value));
    }

    private static void AddHeaderFrames(List<byte> input, Random random, int streamId, byte[] block)
    {
        var chunk = random.Next(2) == 0 ? block.Length : random.Next(1, Math.Max(2, block.Length));
        var fragments = block.Chunk(Math.Max(1, chunk)).ToList();
        for (var i = 0; i < fragments.Count; i++)
        {
            var last = i == fragments.Count - 1;
            if (i > 0)
            {
                input.AddRange(Frame(0x9, last ? (byte)0x4 : (byte)0, streamId, fragments[i]));
                continue;
            }

            var payload = new List<byte>();
            byte flags = (byte)(0x1 | (last ? 0x4 : 0));
            var padding = random.Next(3) == 0 ? random.Next(0, 20) : -1;
            if (padding >= 0)
            {
                flags |= 0x8;
                payload.Add((byte)padding);
            }

            if (random.Next(3) == 0)
            {
                flags |= 0x20;
                payload.AddRange([0, 0, 0, 0, (byte)random.Next(256)]);
            }

            payload.AddRange(fragments[0]);
            payload.AddRange(new byte[Math.Max(0, padding)]);
            input.AddRange(Frame(0x1, flags, streamId, [.. payload]));
        }
    }

    private static byte[] Frame(byte type, byte flags, int streamId, byte[] payload) =>
        [(byte)(payload.Length >> 16), (byte)(payload.Length >> 8), (byte)payload.Length, type, flags,
            (byte)(streamId >> 24), (byte)(streamId >> 16), (byte)(streamId >> 8), (byte)streamId, .. payload];

    /// <summary>Like the middleware's pump: whatever the rewriter leaves unconsumed is offered again with the next read.</summary>
    private static byte[] FeedInPieces(Http2HeaderRewriter rewriter, byte[] bytes, Random random)
    {
        var output = new ArrayBufferWriter<byte>();
        var pending = new List<byte>();
        var offset = 0;
        while (offset < bytes.Length)
        {
            var take = Math.Min(bytes.Length - offset, random.Next(1, 120));
            pending.AddRange(bytes.AsSpan(offset, take).ToArray());
            offset += take;
            var sequence = new ReadOnlySequence<byte>(pending.ToArray());
            var consumed = (int)sequence.Slice(0, rewriter.Process(sequence, output)).Length;
            pending.RemoveRange(0, consumed);
        }

        Assert.Empty(pending);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>The header blocks (padding and priority removed, CONTINUATIONs joined) and the other frames of an HTTP/2 client stream.</summary>
    private static (List<(int StreamId, byte[] Block)> Blocks, List<byte[]> Others) ParseFrames(byte[] stream)
    {
        var blocks = new List<(int, byte[])>();
        var others = new List<byte[]>();
        var current = new List<byte>();
        var i = 24; // the preface
        while (i < stream.Length)
        {
            var length = (stream[i] << 16) | (stream[i + 1] << 8) | stream[i + 2];
            var type = stream[i + 3];
            var flags = stream[i + 4];
            var streamId = ((stream[i + 5] & 0x7F) << 24) | (stream[i + 6] << 16) | (stream[i + 7] << 8) | stream[i + 8];
            var payload = stream.AsSpan(i + 9, length);
            if (type is 0x1 or 0x9)
            {
                if (type == 0x1)
                {
                    var start = (flags & 0x8) != 0 ? 1 : 0;
                    var end = payload.Length - ((flags & 0x8) != 0 ? payload[0] : 0);
                    start += (flags & 0x20) != 0 ? 5 : 0;
                    payload = payload[start..end];
                }

                current.AddRange(payload.ToArray());
                if ((flags & 0x4) != 0)
                {
                    blocks.Add((streamId, current.ToArray()));
                    current.Clear();
                }
            }
            else
            {
                others.Add(stream.AsSpan(i, 9 + length).ToArray());
            }

            i += 9 + length;
        }

        return (blocks, others);
    }
}
