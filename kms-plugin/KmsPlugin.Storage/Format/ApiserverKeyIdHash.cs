using System.Security.Cryptography;
using System.Text;

namespace KmsPlugin.Storage.Format;

/// <summary>
/// A key_id as kube-apiserver labels it in its metrics (<c>key_id_hash</c> of
/// <c>apiserver_envelope_encryption_key_id_hash_*</c>, envelope/metrics/metrics.go): <c>sha256:</c> and the full
/// lowercase hex SHA-256 of the key_id's bytes. An operator matches audit output to dashboards with it.
/// </summary>
public static class ApiserverKeyIdHash
{
    public static string Of(string keyId)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(keyId)));
    }
}
