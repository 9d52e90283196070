using System.Buffers.Binary;
using System.Text;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.Protocol;

namespace KmsPlugin.Core.Envelope;

/// <summary>
/// The bytes returned as KMS v1 <c>EncryptResponse.cipher</c> (kms/apis/v1beta1/api.proto). KMS v1 has no key_id and
/// no annotations: the apiserver stores only <c>cipher</c> (behind a uint16 length in front of each object,
/// apiserver/pkg/storage/value/encrypt/envelope/envelope.go), so the cipher carries everything a KMS v2 Decrypt needs:
/// <code>
///   format (1 byte, 0x4B 'K') ‖ version (1 byte, 0x01)
///   ‖ u16be len ‖ key_id (UTF-8, 1..1024 bytes)
///   ‖ u8 n ‖ n × [ u16be len ‖ annotation key (UTF-8) ‖ u16be len ‖ annotation value ]   (keys + values ≤ 32 KiB)
///   ‖ u16be len ‖ ciphertext (1..1024 bytes: what EnvelopeService.EncryptAsync returned, format 0x01 or 0x02)
/// </code>
/// Its first byte differs from every KMS v2 ciphertext (<see cref="SealedSeedFormat"/> 0x01, <see cref="DirectSeedFormat"/>
/// 0x02), so neither protocol's Decrypt can mistake the other's bytes for its own. The bounds are the apiserver's own
/// KMS v2 limits (<see cref="ApiserverLimits"/>); the whole value stays below <see cref="MaxEncodedBytes"/>, far inside
/// the 65,535 bytes the v1 envelope's uint16 length can record. The blob is not authenticated by itself: the sealed
/// ciphertext inside it binds the key_id and the annotation (see <see cref="SealedSeedFormat"/>), and decoding is
/// strict (exact lengths, no trailing bytes, valid UTF-8, no duplicate keys) so that nothing unexpected reaches it.
/// </summary>
internal static class V1Beta1CipherFormat
{
    public const byte FormatByte = 0x4B; // 'K'
    public const byte Version1 = 0x01;
    public const int MaxAnnotations = byte.MaxValue;

    /// <summary>Header, key_id, every annotation's framing and bytes, and the ciphertext at their bounds: 35,843 bytes.</summary>
    public const int MaxEncodedBytes = 2 + 2 + ApiserverLimits.MaxKeyIdBytes + 1 + (MaxAnnotations * 4) + ApiserverLimits.MaxAnnotationsBytes
        + 2 + ApiserverLimits.MaxCiphertextBytes;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>What a v1 cipher holds: exactly the arguments of <see cref="EnvelopeService.DecryptAsync"/>.</summary>
    public sealed record Decoded(string KeyId, KeyValuePair<string, ReadOnlyMemory<byte>>[] Annotations, ReadOnlyMemory<byte> Ciphertext);

    /// <summary>Packs an Encrypt result. A result outside the bounds is a plugin bug (Internal), never silently truncated.</summary>
    public static byte[] Encode(EncryptResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var keyId = Encoding.UTF8.GetBytes(result.KeyId);
        if (keyId.Length is 0 or > ApiserverLimits.MaxKeyIdBytes)
        {
            throw Bug($"key_id is {keyId.Length} bytes, outside 1..{ApiserverLimits.MaxKeyIdBytes}");
        }

        if (result.Ciphertext.Length is 0 or > ApiserverLimits.MaxCiphertextBytes)
        {
            throw Bug($"ciphertext is {result.Ciphertext.Length} bytes, outside 1..{ApiserverLimits.MaxCiphertextBytes}");
        }

        if (result.Annotations.Count > MaxAnnotations)
        {
            throw Bug($"{result.Annotations.Count} annotations, more than {MaxAnnotations}");
        }

        var keys = new byte[result.Annotations.Count][];
        long annotationBytes = 0;
        for (var i = 0; i < keys.Length; i++)
        {
            keys[i] = Encoding.UTF8.GetBytes(result.Annotations[i].Key);
            annotationBytes += keys[i].Length + result.Annotations[i].Value.Length;
        }

        if (annotationBytes > ApiserverLimits.MaxAnnotationsBytes)
        {
            throw Bug($"annotations total {annotationBytes} bytes, more than {ApiserverLimits.MaxAnnotationsBytes}");
        }

        var output = new byte[2 + 2 + keyId.Length + 1 + (keys.Length * 4) + (int)annotationBytes + 2 + result.Ciphertext.Length];
        var writer = new Writer(output);
        writer.Byte(FormatByte);
        writer.Byte(Version1);
        writer.Prefixed(keyId);
        writer.Byte((byte)keys.Length);
        for (var i = 0; i < keys.Length; i++)
        {
            writer.Prefixed(keys[i]);
            writer.Prefixed(result.Annotations[i].Value);
        }

        writer.Prefixed(result.Ciphertext);
        return output;
    }

    /// <summary>Unpacks a v1 cipher, checking every length against its bound and the input's end; slices, does not copy.</summary>
    /// <exception cref="KmsPluginException">InvalidRequest naming the first problem found.</exception>
    public static Decoded Decode(ReadOnlyMemory<byte> cipher)
    {
        var span = cipher.Span;
        if (span.IsEmpty)
        {
            throw KmsPluginException.Invalid("cipher is empty");
        }

        if (span[0] != FormatByte)
        {
            throw KmsPluginException.Invalid(span[0] is SealedSeedFormat.Version1 or DirectSeedFormat.Version2
                ? $"cipher is a KMS v2 ciphertext (format version {span[0]}), not a KMS v1 cipher; it can only be decrypted by /v2.KeyManagementService/Decrypt with its key_id and annotations"
                : $"cipher has unknown format byte 0x{span[0]:X2} (this plugin's KMS v1 service writes 0x{FormatByte:X2}); it was not made by this plugin");
        }

        if (cipher.Length > MaxEncodedBytes)
        {
            throw KmsPluginException.Invalid($"cipher is {cipher.Length} bytes, more than the {MaxEncodedBytes} this plugin ever writes");
        }

        var reader = new Reader(cipher);
        reader.Byte("format version"); // the format byte, checked above
        var version = reader.Byte("format version");
        if (version != Version1)
        {
            throw KmsPluginException.Invalid($"cipher has unknown KMS v1 format version {version} (this plugin writes version {Version1})");
        }

        var keyId = Utf8(reader.Prefixed("key_id", 1, ApiserverLimits.MaxKeyIdBytes), "key_id");
        var count = reader.Byte("annotation count");
        var annotations = new KeyValuePair<string, ReadOnlyMemory<byte>>[count];
        var annotationBytes = 0;
        for (var i = 0; i < count; i++)
        {
            var keyBytes = reader.Prefixed("annotation key", 1, ApiserverLimits.MaxAnnotationsBytes);
            var key = Utf8(keyBytes, "annotation key");
            var value = reader.Prefixed("annotation value", 0, ApiserverLimits.MaxAnnotationsBytes);
            annotationBytes += keyBytes.Length + value.Length;
            if (annotationBytes > ApiserverLimits.MaxAnnotationsBytes)
            {
                throw KmsPluginException.Invalid($"cipher's annotations total more than {ApiserverLimits.MaxAnnotationsBytes} bytes");
            }

            for (var j = 0; j < i; j++)
            {
                if (annotations[j].Key == key)
                {
                    throw KmsPluginException.Invalid($"cipher has annotation \"{ApiserverRules.Printable(key)}\" twice");
                }
            }

            annotations[i] = new(key, value);
        }

        var ciphertext = reader.Prefixed("ciphertext", 1, ApiserverLimits.MaxCiphertextBytes);
        if (reader.Remaining != 0)
        {
            throw KmsPluginException.Invalid($"cipher has {reader.Remaining} unexpected bytes after its end");
        }

        return new Decoded(keyId, annotations, ciphertext);
    }

    private static string Utf8(ReadOnlyMemory<byte> bytes, string field)
    {
        try
        {
            return StrictUtf8.GetString(bytes.Span);
        }
        catch (DecoderFallbackException)
        {
            throw KmsPluginException.Invalid($"cipher's {field} is not valid UTF-8");
        }
    }

    private static KmsPluginException Bug(string problem) =>
        new(KmsErrorKind.Internal, "the plugin produced a KMS v1 cipher outside its own format's bounds: " + problem);

    private ref struct Writer(Span<byte> output)
    {
        private readonly Span<byte> _output = output;
        private int _at;

        public void Byte(byte value) => _output[_at++] = value;

        public void Prefixed(ReadOnlySpan<byte> bytes)
        {
            BinaryPrimitives.WriteUInt16BigEndian(_output[_at..], checked((ushort)bytes.Length));
            bytes.CopyTo(_output[(_at + 2)..]);
            _at += 2 + bytes.Length;
        }
    }

    private struct Reader(ReadOnlyMemory<byte> input)
    {
        private int _at;

        public readonly int Remaining => input.Length - _at;

        public byte Byte(string field)
        {
            if (Remaining < 1)
            {
                throw Truncated(field);
            }

            return input.Span[_at++];
        }

        public ReadOnlyMemory<byte> Prefixed(string field, int min, int max)
        {
            if (Remaining < 2)
            {
                throw Truncated(field);
            }

            var length = BinaryPrimitives.ReadUInt16BigEndian(input.Span[_at..]);
            if (length < min || length > max)
            {
                throw KmsPluginException.Invalid($"cipher's {field} is {length} bytes, outside {min}..{max}");
            }

            if (Remaining - 2 < length)
            {
                throw Truncated(field);
            }

            var value = input.Slice(_at + 2, length);
            _at += 2 + length;
            return value;
        }

        private static KmsPluginException Truncated(string field) => KmsPluginException.Invalid($"cipher is truncated (in its {field})");
    }
}
