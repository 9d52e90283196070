using System.Security.Cryptography;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Vault;

/// <summary>
/// Reads a small secret (a Vault token, a JWT, an AppRole secret id) from a file into a pinned array the caller zeroes.
/// Surrounding whitespace (the newline editors and <c>echo</c> add) is dropped. Messages name the file, never the content.
/// </summary>
internal static class SecretFile
{
    public const int MaxBytes = 16 * 1024;

    /// <param name="field">The option naming the file, for messages (e.g. <c>auth.secretIdFile</c>).</param>
    /// <param name="privateFile">
    /// True for files that hold a Vault credential outright (a token, a secret id): refused when other users can read
    /// or write them. Projected service-account tokens are exempt: the kubelet decides their mode.
    /// </param>
    public static byte[] Read(string path, string field, string rootKeyName, bool privateFile)
    {
        byte[]? raw = null;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                // A token written by an agent or the kubelet may simply not be there yet: a retry can fix it.
                throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"vault root key '{rootKeyName}': {field} {path} does not exist");
            }

            const UnixFileMode otherAccess = UnixFileMode.OtherRead | UnixFileMode.OtherWrite;
            if (privateFile && (info.UnixFileMode & otherAccess) != 0)
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyDenied,
                    $"vault root key '{rootKeyName}': {field} {path} is readable or writable by other users (mode {Convert.ToString((int)info.UnixFileMode, 8)}); run: chmod o-rw {path}");
            }

            if (info.Length > MaxBytes)
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"vault root key '{rootKeyName}': {field} {path} is {info.Length} bytes, too large");
            }

            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
            raw = GC.AllocateArray<byte>((int)info.Length, pinned: true);
            var read = 0;
            while (read < raw.Length)
            {
                var n = RandomAccess.Read(handle, raw.AsSpan(read), read);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }

            var content = raw.AsSpan(0, read);
            var start = 0;
            while (start < content.Length && IsSpace(content[start]))
            {
                start++;
            }

            var end = content.Length;
            while (end > start && IsSpace(content[end - 1]))
            {
                end--;
            }

            if (end == start)
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"vault root key '{rootKeyName}': {field} {path} is empty");
            }

            var secret = GC.AllocateArray<byte>(end - start, pinned: true);
            content[start..end].CopyTo(secret);
            return secret;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"vault root key '{rootKeyName}': cannot read {field} {path}: {e.Message}", e);
        }
        finally
        {
            if (raw is not null)
            {
                CryptographicOperations.ZeroMemory(raw);
            }
        }
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';
}
