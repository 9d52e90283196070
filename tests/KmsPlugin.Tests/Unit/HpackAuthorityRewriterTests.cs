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
}
