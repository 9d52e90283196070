using System.Security.Cryptography;
using System.Text;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Azure.Tests;

/// <summary>
/// The shared Recognizes fuzz contract for the azure blob, <c>format(1) ‖ algorithm(1) ‖ versionLength(1) ‖ keyVersion
/// ‖ wrapkey output</c>: headers recording another key version, or a wrong version length.
/// </summary>
public sealed class WrapFuzzTests : WrapFuzzContract<AzureVersionedBackend>
{
    private readonly string _other = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    protected override IReadOnlyList<string> OtherVersions => [_other];

    protected override string? ParsedVersion(byte[] wrapped) => AzureWrappedBlob.TryParse(wrapped, out _, out var version, out _) ? version : null;

    protected override void DisguiseAsWrap(Random random, byte[] bytes)
    {
        if (bytes.Length > 2)
        {
            bytes[0] = AzureWrappedBlob.Format; // a plausible header with a random version field
            bytes[1] = (byte)random.Next(1, 3);
        }
    }

    protected override byte[] MutateHeader(Random random, byte[] genuine)
    {
        var wrapped = genuine.ToArray();
        if (random.Next(3) == 0)
        {
            wrapped[2] = (byte)random.Next(256); // the version length
        }
        else
        {
            // Another version recorded (of the genuine one's length, so the rest stays aligned), or the genuine one again.
            Encoding.ASCII.GetBytes(random.Next(2) == 0 ? _other : Key.CurrentVersion).CopyTo(wrapped, 3);
        }

        return wrapped;
    }
}
