using System.Text;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Gcp.Tests;

/// <summary>
/// The shared Recognizes fuzz contract for the gcp blob, <c>format(1) ‖ versionLength(1) ‖ version digits ‖ ciphertext</c>:
/// headers recording another CryptoKeyVersion number (leading zeros and out-of-range numbers included).
/// </summary>
public sealed class WrapFuzzTests : WrapFuzzContract<GcpVersionedBackend>
{
    protected override IReadOnlyList<string> OtherVersions => ["2", "17"];

    // A random one-digit header names version 2 about once in a few thousand inputs.
    protected override bool RandomBytesMayRecordAVersion => true;

    protected override string? ParsedVersion(byte[] wrapped) => GcpWrappedBlob.TryParse(wrapped, out var version, out _) ? version : null;

    protected override void DisguiseAsWrap(Random random, byte[] bytes)
    {
        if (bytes.Length > 2)
        {
            bytes[0] = GcpWrappedBlob.Format; // a plausible header with a random version length
            bytes[1] = (byte)random.Next(0, 21);
        }
    }

    protected override byte[] MutateHeader(Random random, byte[] genuine)
    {
        var ciphertext = genuine.AsSpan(2 + genuine[1]);
        var digits = Encoding.ASCII.GetBytes(RandomVersionNumber(random));
        return [GcpWrappedBlob.Format, (byte)digits.Length, .. digits, .. ciphertext];
    }
}
