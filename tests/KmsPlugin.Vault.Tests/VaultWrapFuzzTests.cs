using System.Globalization;
using System.Text;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Vault.Tests;

/// <summary>
/// The shared Recognizes fuzz contract for the vault blob, <c>format(1) ‖ "vault:v{N}:" ‖ base64</c>: prefixes naming
/// another Transit version (leading zeros and out-of-range numbers included).
/// </summary>
public sealed class VaultWrapFuzzTests : WrapFuzzContract<VaultVersionedBackend>
{
    protected override IReadOnlyList<string> OtherVersions => ["2", "7"];

    protected override string? ParsedVersion(byte[] wrapped) =>
        VaultCiphertext.TryParse(wrapped, out _, out var version) ? version.ToString(CultureInfo.InvariantCulture) : null;

    protected override void DisguiseAsWrap(Random random, byte[] bytes)
    {
        if (bytes.Length > 0)
        {
            bytes[0] = VaultCiphertext.TransitAeadV1;
        }
    }

    protected override byte[] MutateHeader(Random random, byte[] genuine)
    {
        var version = RandomVersionNumber(random);
        var digits = 1 + "vault:v".Length;
        var base64 = genuine.AsSpan(digits + genuine.AsSpan(digits).IndexOf((byte)':') + 1);
        return [VaultCiphertext.TransitAeadV1, .. Encoding.ASCII.GetBytes($"vault:v{version}:"), .. base64];
    }
}
