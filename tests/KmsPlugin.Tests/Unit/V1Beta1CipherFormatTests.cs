using System.Text;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.Protocol;

namespace KmsPlugin.Tests.Unit;

/// <summary>The self-contained KMS v1 cipher: exact layout, bounds on both sides, strict decoding.</summary>
public sealed class V1Beta1CipherFormatTests
{
    private static EncryptResult Result(byte[] ciphertext, string keyId, params (string Key, byte[] Value)[] annotations) =>
        new(ciphertext, keyId, annotations.Select(a => new KeyValuePair<string, byte[]>(a.Key, a.Value)).ToList());

    private static KmsPluginException Invalid(byte[] cipher)
    {
        var error = Assert.Throws<KmsPluginException>(() => V1Beta1CipherFormat.Decode(cipher));
        Assert.Equal(KmsErrorKind.InvalidRequest, error.Kind);
        return error;
    }

    [Fact]
    public void The_layout_is_exactly_the_documented_one()
    {
        var encoded = V1Beta1CipherFormat.Encode(Result([0x01, 0xAA], "k", ("a.b", [0x07])));
        byte[] expected =
        [
            0x4B, 0x01, // format 'K', version 1
            0x00, 0x01, (byte)'k', // key_id
            0x01, // one annotation
            0x00, 0x03, (byte)'a', (byte)'.', (byte)'b', 0x00, 0x01, 0x07, // key, value
            0x00, 0x02, 0x01, 0xAA, // ciphertext
        ];
        Assert.Equal(expected, encoded);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public void Decode_returns_exactly_what_was_encoded(int annotationCount)
    {
        var annotations = Enumerable.Range(0, annotationCount).Select(i => ($"k{i}.example.com", Encoding.ASCII.GetBytes(new string('v', i * 10)))).ToArray();
        var decoded = V1Beta1CipherFormat.Decode(V1Beta1CipherFormat.Encode(Result([0x01, 2, 3], "local-0123", annotations)));
        Assert.Equal("local-0123", decoded.KeyId);
        Assert.Equal([0x01, 2, 3], decoded.Ciphertext.ToArray());
        Assert.Equal(annotations.Select(a => a.Item1), decoded.Annotations.Select(a => a.Key));
        Assert.Equal(annotations.Select(a => a.Item2), decoded.Annotations.Select(a => a.Value.ToArray()));
    }

    [Fact]
    public void A_cipher_at_every_bound_decodes_and_fits_the_v1_envelopes_uint16_length()
    {
        // kube-apiserver's v1 envelope writes the cipher behind a uint16 length (envelope.go, AddUint16LengthPrefixed).
        Assert.True(V1Beta1CipherFormat.MaxEncodedBytes <= ushort.MaxValue);
        var key = new string('a', 100) + ".example.com";
        var encoded = V1Beta1CipherFormat.Encode(Result(new byte[ApiserverLimits.MaxCiphertextBytes], new string('k', ApiserverLimits.MaxKeyIdBytes),
            (key, new byte[ApiserverLimits.MaxAnnotationsBytes - key.Length])));
        Assert.True(encoded.Length <= V1Beta1CipherFormat.MaxEncodedBytes);
        Assert.Equal(ApiserverLimits.MaxKeyIdBytes, V1Beta1CipherFormat.Decode(encoded).KeyId.Length);
    }

    [Fact]
    public void Encode_refuses_a_result_outside_the_bounds_as_a_plugin_bug()
    {
        foreach (var result in new[]
        {
            Result([1], ""),
            Result([1], new string('k', ApiserverLimits.MaxKeyIdBytes + 1)),
            Result([], "k"),
            Result(new byte[ApiserverLimits.MaxCiphertextBytes + 1], "k"),
            Result([1], "k", ("a.b", new byte[ApiserverLimits.MaxAnnotationsBytes])),
        })
        {
            Assert.Equal(KmsErrorKind.Internal, Assert.Throws<KmsPluginException>(() => V1Beta1CipherFormat.Encode(result)).Kind);
        }
    }

    [Fact]
    public void Decode_names_a_KMS_v2_ciphertext_and_a_foreign_format()
    {
        Assert.Contains("is a KMS v2 ciphertext", Invalid([0x01, 0, 0]).Message, StringComparison.Ordinal);
        Assert.Contains("is a KMS v2 ciphertext", Invalid([0x02, 0, 0]).Message, StringComparison.Ordinal);
        Assert.Contains("unknown format byte 0x7F", Invalid([0x7F, 0, 0]).Message, StringComparison.Ordinal);
        Assert.Contains("unknown KMS v1 format version 2", Invalid([0x4B, 0x02, 0, 1, (byte)'k', 0, 0, 1, 1]).Message, StringComparison.Ordinal);
        Assert.Contains("cipher is empty", Invalid([]).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decode_refuses_out_of_bound_lengths_before_reading_them()
    {
        Assert.Contains("key_id is 0 bytes", Invalid([0x4B, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01]).Message, StringComparison.Ordinal);
        Assert.Contains("key_id is 1025 bytes", Invalid([0x4B, 0x01, 0x04, 0x01, .. new byte[1100]]).Message, StringComparison.Ordinal);
        Assert.Contains("ciphertext is 0 bytes", Invalid([0x4B, 0x01, 0x00, 0x01, (byte)'k', 0x00, 0x00, 0x00]).Message, StringComparison.Ordinal);
        Assert.Contains("ciphertext is 1025 bytes", Invalid([0x4B, 0x01, 0x00, 0x01, (byte)'k', 0x00, 0x04, 0x01, .. new byte[1025]]).Message,
            StringComparison.Ordinal);
    }

    [Fact]
    public void Decode_refuses_annotations_over_32_KiB_in_total()
    {
        var half = new byte[ApiserverLimits.MaxAnnotationsBytes / 2];
        var cipher = V1Beta1CipherFormat.Encode(Result([1], "k", ("a.b", half[..^3]), ("c.d", half[..^3])));
        Assert.Equal(2, V1Beta1CipherFormat.Decode(cipher).Annotations.Length);

        // one byte more in the second value, framing patched by hand (Encode itself refuses it)
        List<byte> bytes = [0x4B, 0x01, 0x00, 0x01, (byte)'k', 0x02];
        AddPrefixed(bytes, "a.b"u8.ToArray());
        AddPrefixed(bytes, half[..^3]);
        AddPrefixed(bytes, "c.d"u8.ToArray());
        AddPrefixed(bytes, half[..^2]);
        AddPrefixed(bytes, [1]);
        Assert.Contains("annotations total more than 32768", Invalid([.. bytes]).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decode_refuses_duplicate_annotation_keys_invalid_UTF8_and_trailing_bytes()
    {
        var duplicate = V1Beta1CipherFormat.Encode(Result([1], "k", ("a.b", [1]), ("a.b", [2])));
        Assert.Contains("twice", Invalid(duplicate).Message, StringComparison.Ordinal);

        Assert.Contains("key_id is not valid UTF-8", Invalid([0x4B, 0x01, 0x00, 0x01, 0xFF, 0x00, 0x00, 0x01, 0x01]).Message, StringComparison.Ordinal);
        Assert.Contains("annotation key is not valid UTF-8",
            Invalid([0x4B, 0x01, 0x00, 0x01, (byte)'k', 0x01, 0x00, 0x02, 0xC0, 0xAF, 0x00, 0x00, 0x00, 0x01, 0x01]).Message, StringComparison.Ordinal);

        var good = V1Beta1CipherFormat.Encode(Result([1], "k"));
        Assert.Contains("1 unexpected bytes after its end", Invalid([.. good, 0x00]).Message, StringComparison.Ordinal);
        for (var length = 0; length < good.Length; length++)
        {
            Invalid(good[..length]);
        }
    }

    private static void AddPrefixed(List<byte> bytes, byte[] value)
    {
        bytes.Add((byte)(value.Length >> 8));
        bytes.Add((byte)value.Length);
        bytes.AddRange(value);
    }
}
