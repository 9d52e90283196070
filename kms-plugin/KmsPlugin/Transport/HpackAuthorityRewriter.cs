namespace KmsPlugin.Transport;

/// <summary>
/// Rewrites <c>:authority</c> in one HPACK header block (RFC 7541) without decoding any string: instructions are
/// walked by their prefixes and lengths (section 6); a literal whose name is static index 1 (<c>:authority</c>) is
/// re-emitted with the value <c>localhost</c> in the same representation (with/without/never indexing), so the
/// dynamic table of the decoder stays index-compatible with the encoder's.
/// </summary>
internal static class HpackAuthorityRewriter
{
    private static readonly byte[] Localhost = "localhost"u8.ToArray();

    /// <summary>The rewritten block, or null when there is nothing to change or the block is not valid HPACK.</summary>
    public static byte[]? Rewrite(ReadOnlySpan<byte> block)
    {
        List<(int Start, int End, byte Prefix)>? replacements = null;
        var i = 0;
        while (i < block.Length)
        {
            var start = i;
            var b = block[i];
            if ((b & 0x80) != 0)
            {
                // 6.1 indexed header field
                if (!TryInteger(block, ref i, 7, out _))
                {
                    return null;
                }

                continue;
            }

            int prefixBits;
            byte representation;
            if ((b & 0xC0) == 0x40)
            {
                prefixBits = 6; // 6.2.1 literal with incremental indexing
                representation = 0x40;
            }
            else if ((b & 0xE0) == 0x20)
            {
                // 6.3 dynamic table size update
                if (!TryInteger(block, ref i, 5, out _))
                {
                    return null;
                }

                continue;
            }
            else
            {
                prefixBits = 4; // 6.2.2 without indexing (0000) / 6.2.3 never indexed (0001)
                representation = (byte)(b & 0xF0);
            }

            if (!TryInteger(block, ref i, prefixBits, out var nameIndex))
            {
                return null;
            }

            if (nameIndex == 0 && !TrySkipString(block, ref i))
            {
                return null;
            }

            if (!TrySkipString(block, ref i))
            {
                return null;
            }

            if (nameIndex == 1)
            {
                (replacements ??= []).Add((start, i, representation));
            }
        }

        if (replacements is null)
        {
            return null;
        }

        var output = new List<byte>(block.Length + (replacements.Count * 12));
        var copied = 0;
        foreach (var (start, end, representation) in replacements)
        {
            output.AddRange(block[copied..start]);
            output.Add((byte)(representation | 0x01)); // name: static index 1, fits every prefix
            output.Add((byte)Localhost.Length); // H = 0: raw octets
            output.AddRange(Localhost);
            copied = end;
        }

        output.AddRange(block[copied..]);
        return [.. output];
    }

    /// <summary>RFC 7541 section 5.1 integer with an N-bit prefix.</summary>
    internal static bool TryInteger(ReadOnlySpan<byte> block, ref int i, int prefixBits, out long value)
    {
        value = 0;
        if (i >= block.Length)
        {
            return false;
        }

        var mask = (1 << prefixBits) - 1;
        value = block[i++] & mask;
        if (value < mask)
        {
            return true;
        }

        var shift = 0;
        while (i < block.Length)
        {
            var b = block[i++];
            value += (long)(b & 0x7F) << shift;
            shift += 7;
            if ((b & 0x80) == 0)
            {
                return true;
            }

            if (shift > 28)
            {
                return false; // larger than any header a peer may send
            }
        }

        return false;
    }

    private static bool TrySkipString(ReadOnlySpan<byte> block, ref int i)
    {
        if (!TryInteger(block, ref i, 7, out var length) || length > block.Length - i)
        {
            return false;
        }

        i += (int)length;
        return true;
    }
}
