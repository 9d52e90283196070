using KmsPlugin.Core.Errors;

namespace KmsPlugin.Core.Security;

/// <summary>
/// Checks for files that hold a long-lived secret (a client secret, a certificate's private key, a service-account
/// key): like the local root key and the PKCS#11 PIN file, such a file readable by other accounts is a secret
/// already disclosed, so it is refused with the chmod that fixes it.
/// </summary>
public static class SecretFiles
{
    private const UnixFileMode GroupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <exception cref="KmsPluginException">RootKeyDenied when the file is missing or accessible by group or others.</exception>
    public static void RequireOwnerOnly(string path, string owner, string field)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{owner}: {field} {path} does not exist");
        }

        var mode = info.UnixFileMode;
        if ((mode & GroupOrOther) != 0)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied,
                $"{owner}: {field} {path} is accessible by group or others (mode {Convert.ToString((int)mode, 8)}); run: chmod 600 {path}");
        }
    }

    /// <summary>Reads a secret text file (owner-only), without one trailing newline that editors and <c>echo</c> add.</summary>
    /// <remarks>The result is a string because the SDK that consumes it takes one; callers keep it no longer than that call.</remarks>
    public static string ReadText(string path, string owner, string field)
    {
        RequireOwnerOnly(path, owner, field);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{owner}: cannot read {field} {path}: {e.Message}", e);
        }

        text = text.TrimEnd('\r', '\n');
        return text.Length == 0 ? throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{owner}: {field} {path} is empty") : text;
    }
}
