using System.Security.Cryptography;
using System.Text;

namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// key_id derivation. The apiserver treats key_id as public (it logs it and hashes it into metrics) and as the
/// name of the remote KEK (api.proto EncryptResponse.key_id: "must always refer to the KMS KEK and not any local
/// KEKs"). So: an opaque, deterministic hash of the provider and its identity for the key+version, never a raw
/// ARN or label, unchanged by local KEK rotation, and the same on every control-plane node.
/// Format: <c>&lt;provider&gt;-&lt;32 lowercase hex&gt;</c> (128 bits of SHA-256).
/// </summary>
public static class KeyIds
{
    private const string Domain = "k8s-kms-plugin/key-id/v1";

    public static string Derive(string provider, string identity)
    {
        ArgumentException.ThrowIfNullOrEmpty(provider);
        ArgumentException.ThrowIfNullOrEmpty(identity);
        var input = Encoding.UTF8.GetBytes($"{Domain}\n{provider}\n{identity}");
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(input, hash);
        return provider + "-" + Convert.ToHexStringLower(hash[..16]);
    }
}
