using System.Globalization;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Core.Security;

/// <summary>
/// Start-up checks that the files the plugin trusts — root key files, PIN files, credential files, its state
/// directory, its socket directory — can be changed by nobody but the plugin's own user and root.
/// </summary>
/// <remarks>
/// <para>Mode alone is not enough. A 0600 file owned by another user is that user's to rewrite (a PIN or key of their
/// choosing); a 0600 file in a directory that others may write can be renamed away and replaced (rename(2) needs
/// write permission on the directory, not on the file); a symbolic link can point anywhere. So, like OpenSSH's
/// StrictModes and sudo's checks on sudoers, a secret file must be a regular file owned by the plugin's effective
/// uid or root with no group/other permission bits, and every symbolic link on the way to it and every directory
/// holding one of them must be owned by the plugin's uid or root and not writable by group or others — unless the
/// directory has the sticky bit (then only an entry's owner may rename or delete it, unlink(2) EPERM), which is
/// what /tmp and Kubernetes secret volumes use.</para>
/// <para>Every refusal says what is wrong and the command that fixes it (chmod/chown), and never what the file
/// holds. Checked once at start (and on reload); the checks leave no window an attacker could use only if the
/// directories are safe, which is exactly what they check.</para>
/// </remarks>
public static class FileSafety
{
    private static readonly Lazy<FileSafetyRules> Real =
        new(() => new FileSafetyRules((path, follow) => UnixFileStatus.Read(path, follow), UnixFileStatus.EffectiveUid));

    /// <summary>
    /// A file holding a secret (root key, PIN, credential): a regular file (symbolic links are followed, each
    /// checked), owned by this process's effective uid or root, no group/other permission bits, and held by safe
    /// directories (see the remarks).
    /// </summary>
    /// <param name="owner">Who asks, for messages: <c>pkcs11 root key 'hsm'</c>.</param>
    /// <param name="field">The option naming the file, for messages: <c>pinFile</c>.</param>
    /// <exception cref="KmsPluginException">RootKeyDenied, naming the file and the chmod/chown that fixes it.</exception>
    public static void RequireSecretFile(string path, string owner, string field) => Real.Value.RequireSecretFile(path, owner, field);

    /// <summary>
    /// A directory only the plugin may read or change (its state directory): owned by this process's effective uid,
    /// mode 0700 or stricter, held by a safe directory. With <paramref name="create"/> a missing directory is created
    /// 0700 (its parent must be safe).
    /// </summary>
    /// <exception cref="KmsPluginException">RootKeyDenied, naming the directory and the chmod/chown that fixes it.</exception>
    public static void RequirePrivateDirectory(string path, string owner, string field, bool create = false) =>
        Real.Value.RequirePrivateDirectory(path, owner, field, create);

    /// <summary>
    /// Why other users could replace entries of <paramref name="directory"/> (owned by someone other than this
    /// process's uid or root, or writable by group/others without the sticky bit), with the fix; null when safe.
    /// </summary>
    /// <exception cref="IOException">The directory cannot be inspected.</exception>
    public static string? DescribeUnsafeDirectory(string directory) => Real.Value.DescribeUnsafeDirectory(directory);
}

/// <summary>
/// The rules behind <see cref="FileSafety"/>, with the stat function and the effective uid injectable so tests can
/// show the "owned by another user" refusals without root.
/// </summary>
internal sealed class FileSafetyRules(Func<string, bool, UnixFileStatus?> stat, uint effectiveUid)
{
    /// <summary>Linux gives up after 40 links in one lookup (ELOOP, path_resolution(7)); so do we.</summary>
    private const int MaxLinks = 40;

    private const UnixFileMode GroupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    private const UnixFileMode GroupOrOtherWrite = UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;

    public void RequireSecretFile(string path, string owner, string field)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var current = Path.GetFullPath(path);
        for (var links = 0; ; links++)
        {
            var status = Stat(current, followLinks: false, owner, field, path)
                ?? throw Denied(owner, current == Path.GetFullPath(path)
                    ? $"{field} {path} does not exist"
                    : $"{field} {path} is a symbolic link to {current}, which does not exist");

            RequireSafeDirectory(Path.GetDirectoryName(current) ?? "/", owner, field, path, current);
            RequireOwnedByUsOrRoot(status, current, owner, field, path);

            switch (status.Kind)
            {
                case UnixFileKind.Regular:
                    if ((status.Mode & GroupOrOther) != 0)
                    {
                        throw Denied(owner, $"{field} {path} is accessible by group or others (mode {status.OctalMode}); run: chmod 600 {current}");
                    }

                    return;
                case UnixFileKind.SymbolicLink:
                    if (links == MaxLinks)
                    {
                        throw Denied(owner, $"{field} {path}: more than {MaxLinks} symbolic links");
                    }

                    current = NextLinkTarget(current, owner, field, path);
                    break;
                default:
                    throw Denied(owner, $"{field} {path} is not a regular file ({DescribeKind(status.Kind)})");
            }
        }
    }

    public void RequirePrivateDirectory(string path, string owner, string field, bool create)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        var parent = Path.GetDirectoryName(full) ?? "/";
        var status = Stat(full, followLinks: true, owner, field, path);
        if (status is null)
        {
            if (!create)
            {
                throw Denied(owner, $"{field} {path} does not exist; run: install -d -m 0700 {full}");
            }

            RequireSafeDirectory(parent, owner, field, path, full);
            try
            {
                Directory.CreateDirectory(full, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{owner}: cannot create {field} {path}: {e.Message}", e);
            }

            status = Stat(full, followLinks: true, owner, field, path)
                ?? throw Denied(owner, $"{field} {path} vanished right after it was created");
        }

        if (status.Value.Kind != UnixFileKind.Directory)
        {
            throw Denied(owner, $"{field} {path} is not a directory ({DescribeKind(status.Value.Kind)})");
        }

        // The plugin writes here, so root ownership is not enough: it must be ours.
        if (status.Value.OwnerUid != effectiveUid)
        {
            throw Denied(owner, $"{field} {path} is owned by uid {status.Value.OwnerUid}, not by the plugin's user (uid {effectiveUid}); run: chown {Uid(effectiveUid)} {full}");
        }

        if ((status.Value.Mode & GroupOrOther) != 0)
        {
            throw Denied(owner, $"{field} {path} is accessible by group or others (mode {status.Value.OctalMode}); run: chmod 700 {full}");
        }

        RequireSafeDirectory(parent, owner, field, path, full);
    }

    public string? DescribeUnsafeDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var status = stat(directory, true);
        if (status is null)
        {
            return null; // nothing there that anyone could have prepared
        }

        if (status.Value.OwnerUid != 0 && status.Value.OwnerUid != effectiveUid)
        {
            return $"the directory {directory} is owned by uid {status.Value.OwnerUid}, not by the plugin's user (uid {effectiveUid}) or root, so that user could replace what is in it; run: chown {Uid(effectiveUid)} {directory}";
        }

        if ((status.Value.Mode & GroupOrOtherWrite) != 0 && (status.Value.Mode & UnixFileMode.StickyBit) == 0)
        {
            return $"the directory {directory} is writable by group or others (mode {status.Value.OctalMode}), so another user could replace what is in it; run: chmod go-w {directory}";
        }

        return null;
    }

    private void RequireSafeDirectory(string directory, string owner, string field, string path, string entry)
    {
        string? problem;
        try
        {
            problem = DescribeUnsafeDirectory(directory);
        }
        catch (IOException e)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{owner}: {field} {path}: {e.Message}", e);
        }

        if (problem is not null)
        {
            var what = entry == Path.GetFullPath(path) ? "" : $" (it holds {entry}, on the way to the file)";
            throw Denied(owner, $"{field} {path}: {problem}{what}");
        }
    }

    private void RequireOwnedByUsOrRoot(UnixFileStatus status, string current, string owner, string field, string path)
    {
        if (status.OwnerUid != 0 && status.OwnerUid != effectiveUid)
        {
            var what = status.Kind == UnixFileKind.SymbolicLink ? $"the symbolic link {current}" : current;
            // lchown: for a link, plain chown would change its target instead.
            var fix = status.Kind == UnixFileKind.SymbolicLink ? $"chown -h {Uid(effectiveUid)} {current}" : $"chown {Uid(effectiveUid)} {current}";
            throw Denied(owner, $"{field} {path}: {what} is owned by uid {status.OwnerUid}, not by the plugin's user (uid {effectiveUid}) or root, so that user can change it; run: {fix}");
        }
    }

    private UnixFileStatus? Stat(string path, bool followLinks, string owner, string field, string configured)
    {
        try
        {
            return stat(path, followLinks);
        }
        catch (IOException e)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{owner}: {field} {configured}: {e.Message}", e);
        }
    }

    private static string NextLinkTarget(string link, string owner, string field, string configured)
    {
        string? target;
        try
        {
            target = File.ResolveLinkTarget(link, returnFinalTarget: false)?.FullName;
        }
        catch (IOException e)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{owner}: {field} {configured}: cannot read the symbolic link {link}: {e.Message}", e);
        }

        // A relative target is relative to the link's directory (symlink(7)); FullName already resolved it so.
        return target ?? throw Denied(owner, $"{field} {configured}: {link} stopped being a symbolic link while it was checked");
    }

    private static string Uid(uint uid) => uid == 0 ? "root" : uid.ToString(CultureInfo.InvariantCulture);

    private static string DescribeKind(UnixFileKind kind) => kind switch
    {
        UnixFileKind.Directory => "a directory",
        UnixFileKind.Socket => "a socket",
        _ => "a device, pipe or other special file",
    };

    private static KmsPluginException Denied(string owner, string problem) => new(KmsErrorKind.RootKeyDenied, $"{owner}: {problem}");
}
