using System.Globalization;

namespace KmsPlugin.Core.RootKeys;

/// <summary>
/// The reported key_id is the primary root key's own key_id, plus <c>.e&lt;n&gt;</c> when the same root key comes back
/// after another wrap set was in use (A → B → A): kube-apiserver treats a key_id change as "re-encrypt needed" and an
/// old key_id as "stored under the old key", so a key_id is never handed out twice for two different periods
/// (issue 4; <see cref="KeyIdHistory"/> keeps the epochs). Decrypt strips the suffix to find the root key.
/// </summary>
public static class KeyIdEpoch
{
    private const string Marker = ".e";

    /// <summary>Largest epoch accepted when parsing: far more than a lifetime of rotations, small enough to parse as int.</summary>
    public const int MaxEpoch = 999_999_999;

    public static string Format(string baseKeyId, int epoch)
    {
        ArgumentException.ThrowIfNullOrEmpty(baseKeyId);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        return epoch == 0 ? baseKeyId : baseKeyId + Marker + epoch.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>The root key's own key_id inside a reported key_id (the input itself when it has no epoch suffix).</summary>
    public static string BaseOf(string keyId)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        var marker = keyId.LastIndexOf(Marker, StringComparison.Ordinal);
        if (marker <= 0)
        {
            return keyId;
        }

        var digits = keyId.AsSpan(marker + Marker.Length);
        var wellFormed = digits.Length is > 0 and <= 9 && digits[0] != '0'
            && int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out _);
        return wellFormed ? keyId[..marker] : keyId;
    }
}
