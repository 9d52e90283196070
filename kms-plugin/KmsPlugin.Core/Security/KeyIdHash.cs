using System.Security.Cryptography;
using System.Text;

namespace KmsPlugin.Core.Security;

/// <summary>
/// The form in which a key_id appears in logs and errors: <c>sha256:&lt;first 16 hex&gt;</c>, the same hash the
/// apiserver puts in its metrics (kmsv2-protocol.md section 5), shortened for reading.
/// </summary>
public static class KeyIdHash
{
    public static string Of(string keyId)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(keyId), hash);
        return "sha256:" + Convert.ToHexStringLower(hash[..8]);
    }
}
