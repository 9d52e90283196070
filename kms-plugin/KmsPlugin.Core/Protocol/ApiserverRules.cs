using System.Text;

namespace KmsPlugin.Core.Protocol;

/// <summary>
/// kube-apiserver's own validation of KMS v2 responses, reimplemented so the plugin can check its output before
/// returning it (an Encrypt reply the apiserver would reject is a plugin bug) and so <c>kms-plugin probe</c> can
/// judge a running plugin exactly as the apiserver would. Each method returns null when valid, else the reason.
/// Sources: kmsv2/envelope.go (validateEncryptedObject, ValidateKeyID, validateAnnotations) and
/// apimachinery pkg/util/validation/validation.go (IsFullyQualifiedDomainName).
/// </summary>
public static class ApiserverRules
{
    public static string? CheckCiphertext(ReadOnlySpan<byte> ciphertext)
    {
        if (ciphertext.IsEmpty)
        {
            return "encrypted DEK source is empty";
        }

        return ciphertext.Length > ApiserverLimits.MaxCiphertextBytes
            ? $"encrypted DEK source is {ciphertext.Length} bytes, more than the maximum of {ApiserverLimits.MaxCiphertextBytes}"
            : null;
    }

    public static string? CheckKeyId(string? keyId)
    {
        if (string.IsNullOrEmpty(keyId))
        {
            return "key_id is empty";
        }

        var bytes = Encoding.UTF8.GetByteCount(keyId);
        return bytes > ApiserverLimits.MaxKeyIdBytes
            ? $"key_id is {bytes} bytes, more than the maximum of {ApiserverLimits.MaxKeyIdBytes}"
            : null;
    }

    /// <summary>Every key a lowercase FQDN with at least two labels; keys plus values at most 32 KiB in total.</summary>
    public static string? CheckAnnotations(IEnumerable<KeyValuePair<string, int>> keysAndValueLengths)
    {
        ArgumentNullException.ThrowIfNull(keysAndValueLengths);
        long total = 0;
        foreach (var (key, valueLength) in keysAndValueLengths)
        {
            if (CheckFullyQualifiedDomainName(key) is { } reason)
            {
                return $"annotation key \"{Printable(key)}\" is invalid: {reason}";
            }

            total += Encoding.UTF8.GetByteCount(key) + valueLength;
        }

        return total > ApiserverLimits.MaxAnnotationsBytes
            ? $"annotations total {total} bytes, more than the maximum of {ApiserverLimits.MaxAnnotationsBytes}"
            : null;
    }

    /// <summary>apimachinery IsFullyQualifiedDomainName: one trailing dot allowed, DNS-1123 subdomain, at least two labels.</summary>
    public static string? CheckFullyQualifiedDomainName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length == 0)
        {
            return "must not be empty";
        }

        if (name.EndsWith('.'))
        {
            name = name[..^1];
        }

        if (name.Length > 253)
        {
            return "must be no more than 253 characters";
        }

        var labels = name.Split('.');
        foreach (var label in labels)
        {
            if (!IsDns1123Label(label))
            {
                return "must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
            }
        }

        return labels.Length < 2 ? "should be a domain with at least two segments separated by dots" : null;
    }

    private static bool IsDns1123Label(string label)
    {
        if (label.Length is 0 or > 63)
        {
            return false;
        }

        for (var i = 0; i < label.Length; i++)
        {
            var c = label[i];
            var alnum = c is (>= 'a' and <= 'z') or (>= '0' and <= '9');
            if (!alnum && (c != '-' || i == 0 || i == label.Length - 1))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Annotation keys are attacker-controlled text; keep error messages short and printable.</summary>
    internal static string Printable(string value)
    {
        var builder = new StringBuilder(Math.Min(value.Length, 64));
        foreach (var c in value.AsSpan(0, Math.Min(value.Length, 64)))
        {
            builder.Append(c is >= ' ' and <= '~' && c != '"' ? c : '?');
        }

        if (value.Length > 64)
        {
            builder.Append("...");
        }

        return builder.ToString();
    }
}
