using KmsPlugin.Core.Errors;

namespace KmsPlugin.Core.Security;

/// <summary>
/// Checks for files that hold a long-lived secret (a client secret, a certificate's private key, a service-account
/// key): like the local root key and the PKCS#11 PIN file, such a file readable by other accounts is a secret
/// already disclosed, and one others can replace is a secret of their choosing, so it is refused with the
/// chmod/chown that fixes it (<see cref="FileSafety"/>).
/// </summary>
public static class SecretFiles
{
    /// <summary>
    /// The file must exist and pass <see cref="FileSafety.RequireSecretFile"/>: a regular file owned by the plugin's
    /// user or root, no group/other permission bits, in directories (and through links) nobody else can change.
    /// </summary>
    /// <exception cref="KmsPluginException">RootKeyDenied when the file is missing or unsafe (the message has the chmod/chown).</exception>
    public static void RequireOwnerOnly(string path, string owner, string field) => FileSafety.RequireSecretFile(path, owner, field);

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
