using System.Text;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Aws;

/// <summary>
/// The KMS encryption context of every Encrypt and Decrypt (AWS KMS developer guide, "Encryption context"): KMS binds
/// it to the ciphertext as additional authenticated data, so Decrypt succeeds only with exactly the same pairs.
/// </summary>
/// <remarks>
/// The plugin puts the associated data of <c>IRootKey.WrapAsync</c> (which names the key_id) into
/// <see cref="AssociatedDataKey"/>, base64-encoded because context values are strings. A wrapped KEK moved under
/// another key_id therefore fails KMS authentication (InvalidCiphertextException), and every call the plugin makes
/// carries that key, which IAM conditions can require (docs/providers/aws.md). Context is not secret: CloudTrail
/// logs it, and the associated data holds only the public key_id.
/// </remarks>
internal static class AwsEncryptionContext
{
    /// <summary>Keys under this prefix belong to the plugin; operators' extra context may not use it.</summary>
    public const string ReservedPrefix = "k8s-kms-plugin/";

    public const string AssociatedDataKey = ReservedPrefix + "aad";

    /// <summary>KMS rejects encryption context larger than 8,192 characters (AWS KMS quotas).</summary>
    private const int MaxTotalCharacters = 8192;

    public static void Validate(IReadOnlyDictionary<string, string> extra, Func<string, string, KmsPluginException> invalid)
    {
        ArgumentNullException.ThrowIfNull(extra);
        var total = 0;
        foreach (var (key, value) in extra)
        {
            if (string.IsNullOrEmpty(key) || string.IsNullOrEmpty(value))
            {
                throw invalid("encryptionContext", "keys and values must not be empty");
            }

            if (key.StartsWith(ReservedPrefix, StringComparison.Ordinal))
            {
                throw invalid("encryptionContext", $"key '{key}' uses the prefix {ReservedPrefix}, which is reserved for the plugin's own binding");
            }

            total += key.Length + value.Length;
        }

        // Leave room for the plugin's own pair (the associated data is well under 1 KiB of base64).
        if (total > MaxTotalCharacters - 1024)
        {
            throw invalid("encryptionContext", $"is {total} characters; keep it under {MaxTotalCharacters - 1024} (KMS allows {MaxTotalCharacters} in all)");
        }
    }

    /// <summary>The context for one call: the operator's pairs plus the plugin's binding of <paramref name="associatedData"/>.</summary>
    public static Dictionary<string, string> For(IReadOnlyDictionary<string, string> extra, ReadOnlySpan<byte> associatedData)
    {
        var context = new Dictionary<string, string>(extra, StringComparer.Ordinal)
        {
            [AssociatedDataKey] = Convert.ToBase64String(associatedData),
        };
        return context;
    }

    /// <summary>
    /// The operator's context in a canonical form for the key identity: sorted, each key and value percent-encoded,
    /// so different contexts (which cannot decrypt each other's blobs) give different key_ids.
    /// </summary>
    public static string Canonical(IReadOnlyDictionary<string, string> extra)
    {
        var builder = new StringBuilder();
        foreach (var (key, value) in extra.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (builder.Length > 0)
            {
                builder.Append('&');
            }

            builder.Append(Uri.EscapeDataString(key)).Append('=').Append(Uri.EscapeDataString(value));
        }

        return builder.ToString();
    }
}
