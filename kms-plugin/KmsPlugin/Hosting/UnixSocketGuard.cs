using System.Globalization;
using System.Net.Sockets;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Security;
using KmsPlugin.Native;

namespace KmsPlugin.Hosting;

/// <summary>
/// Everything around the socket file that Kestrel does not do: check the directory it lives in (not writable by
/// group or others unless sticky, owned by the plugin's user or root: <see cref="FileSafety"/>), remove a stale
/// socket left by a crash (only if nothing answers on it), set its mode and group, and remove it on shutdown.
/// </summary>
public static class UnixSocketGuard
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerAndGroup = OwnerOnly | UnixFileMode.GroupRead | UnixFileMode.GroupWrite;

    /// <summary>
    /// Restricts the process umask so the socket (and any file the plugin creates) is born without group/other
    /// access; there is no window between bind and chmod in which another user could connect.
    /// </summary>
    public static void RestrictUmask() => _ = LibC.Umask(0b000_111_111); // 0077; the previous mask is of no use

    public static void PrepareForBind(string socketPath, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        var state = Inspect(socketPath);
        var directory = Path.GetDirectoryName(socketPath) ?? "/";
        if (state == SocketPathState.DirectoryMissing)
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
            logger.LogInformation("created socket directory {Directory} (mode 0750)", directory);
        }
        else if (state == SocketPathState.StaleSocket)
        {
            File.Delete(socketPath);
            logger.LogInformation("removed stale socket {Socket} (nothing answered on it)", socketPath);
        }
    }

    /// <summary>
    /// Looks at the socket path without changing anything (also used by <c>doctor</c>). Throws a
    /// <see cref="ConfigException"/> for every state the plugin must refuse to serve in.
    /// </summary>
    public static SocketPathState Inspect(string socketPath)
    {
        ArgumentNullException.ThrowIfNull(socketPath);
        var directory = Path.GetDirectoryName(socketPath) ?? "/";
        if (!Directory.Exists(directory))
        {
            return File.Exists(directory)
                ? throw new ConfigException("listen", $"{directory} is a file, not a directory")
                : SocketPathState.DirectoryMissing;
        }

        var mode = File.GetUnixFileMode(directory);
        if ((mode & UnixFileMode.OtherWrite) != 0 && (mode & UnixFileMode.StickyBit) == 0)
        {
            throw new ConfigException("listen",
                $"the socket directory {directory} is writable by every user (mode {Octal(mode)}), so anyone could replace the socket; use a directory such as /var/run/kmsplugin with mode 0750");
        }

        // Also refused: a directory owned by another (non-root) user, or group-writable without the sticky bit;
        // either lets someone other than us and root swap the socket the apiserver connects to.
        string? unsafeDirectory;
        try
        {
            unsafeDirectory = FileSafety.DescribeUnsafeDirectory(directory);
        }
        catch (IOException e)
        {
            throw new ConfigException("listen", $"cannot inspect the socket directory: {e.Message}");
        }

        if (unsafeDirectory is not null)
        {
            throw new ConfigException("listen", $"unsafe socket directory: {unsafeDirectory}");
        }

        if (Directory.Exists(socketPath))
        {
            throw new ConfigException("listen", $"{socketPath} is a directory");
        }

        if (!File.Exists(socketPath))
        {
            return SocketPathState.Free;
        }

        if (IsRegularFile(socketPath))
        {
            throw new ConfigException("listen", $"{socketPath} exists and is not a socket; refusing to delete it");
        }

        return SomethingAnswers(socketPath)
            ? throw new ConfigException("listen", $"another process is already serving on {socketPath}; stop it first (two plugins must not share a socket)")
            : SocketPathState.StaleSocket;
    }

    /// <summary>0600, or 0660 and group-owned when a socket group is configured.</summary>
    public static void ApplyPermissions(string socketPath, string? group)
    {
        if (group is null)
        {
            File.SetUnixFileMode(socketPath, OwnerOnly);
            return;
        }

        var gid = ResolveGroup(group);
        if (LibC.Chown(socketPath, -1, gid) != 0)
        {
            throw new ConfigException("socketGroup",
                $"cannot give {socketPath} to group {group} (gid {gid}): errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}; the plugin must run as root or be a member of that group");
        }

        File.SetUnixFileMode(socketPath, OwnerAndGroup);
    }

    public static void Remove(string socketPath)
    {
        try
        {
            if (!IsRegularFile(socketPath))
            {
                File.Delete(socketPath);
            }
        }
        catch (IOException)
        {
            // already gone
        }
    }

    /// <summary>A group name from /etc/group, or a numeric gid.</summary>
    public static int ResolveGroup(string group)
    {
        if (int.TryParse(group, NumberStyles.None, CultureInfo.InvariantCulture, out var numeric))
        {
            return numeric;
        }

        foreach (var line in File.ReadLines("/etc/group"))
        {
            var fields = line.Split(':');
            if (fields.Length >= 3 && fields[0] == group && int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var gid))
            {
                return gid;
            }
        }

        throw new ConfigException("socketGroup", $"group \"{group}\" does not exist in /etc/group (a numeric gid also works)");
    }

    // open(2) on a socket fails with ENXIO, while regular files open: a portable way to tell them apart without
    // lstat. A file we may not read is not assumed to be a socket: we refuse to touch it.
    private static bool IsRegularFile(string path)
    {
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static bool SomethingAnswers(string socketPath)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static string Octal(UnixFileMode mode) => Convert.ToString((int)mode & 0xFFF, 8).PadLeft(4, '0');
}

/// <summary>What is at the socket path before the plugin binds.</summary>
public enum SocketPathState
{
    /// <summary>The directory exists and nothing is at the path.</summary>
    Free,

    /// <summary>The directory does not exist yet; it will be created 0750.</summary>
    DirectoryMissing,

    /// <summary>A socket nobody answers on (left by a crash); it will be removed.</summary>
    StaleSocket,
}
