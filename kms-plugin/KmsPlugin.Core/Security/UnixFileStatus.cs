using System.Runtime.InteropServices;

namespace KmsPlugin.Core.Security;

/// <summary>What kind of file a path names (the S_IFMT bits of st_mode, inode(7)).</summary>
public enum UnixFileKind
{
    Regular,
    Directory,
    SymbolicLink,
    Socket,
    Other,
}

/// <summary>
/// The part of stat(2) that decides who can change a file: its type, owner uid and permission bits. .NET exposes
/// the mode (<see cref="File.GetUnixFileMode(string)"/>) but not the owner, so this reads both with one statx(2).
/// </summary>
public readonly partial record struct UnixFileStatus(UnixFileKind Kind, uint OwnerUid, UnixFileMode Mode)
{
    /// <summary>The permission bits, including setuid/setgid/sticky, as octal (<c>0600</c>, <c>1777</c>).</summary>
    public string OctalMode => Convert.ToString((int)Mode & 0xFFF, 8).PadLeft(4, '0');

    /// <summary>The effective uid of this process (geteuid(2)): whose files the plugin trusts besides root's.</summary>
    public static uint EffectiveUid => Native.GetEffectiveUid();

    /// <summary>
    /// statx(2) of <paramref name="path"/>; <paramref name="followLinks"/> false describes a symbolic link itself
    /// (like lstat). Null when the path does not exist.
    /// </summary>
    /// <exception cref="IOException">statx failed for another reason (e.g. EACCES on a parent directory).</exception>
    public static UnixFileStatus? Read(string path, bool followLinks)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        int result;
        Native.StatxBuffer buffer;
        try
        {
            result = Native.Statx(Native.AtFdCwd, path, followLinks ? 0 : Native.AtSymlinkNoFollow, Native.Wanted, out buffer);
        }
        catch (EntryPointNotFoundException e)
        {
            // statx is in glibc since 2.28 and musl since 1.2.5, older than every distribution .NET 10 supports.
            throw new IOException($"cannot inspect {path}: this C library has no statx(2) (glibc >= 2.28 or musl >= 1.2.5 is needed)", e);
        }

        if (result != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno is Native.ENOENT or Native.ENOTDIR
                ? null
                : throw new IOException($"cannot inspect {path}: statx failed with errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})");
        }

        if ((buffer.Mask & Native.Wanted) != Native.Wanted)
        {
            throw new IOException($"cannot inspect {path}: the file system did not report its type, mode and owner");
        }

        var kind = (buffer.Mode & Native.TypeMask) switch
        {
            Native.TypeRegular => UnixFileKind.Regular,
            Native.TypeDirectory => UnixFileKind.Directory,
            Native.TypeSymbolicLink => UnixFileKind.SymbolicLink,
            Native.TypeSocket => UnixFileKind.Socket,
            _ => UnixFileKind.Other,
        };

        // The low 12 bits of st_mode are exactly UnixFileMode's values (UserRead = 0400 ... StickyBit = 01000).
        return new UnixFileStatus(kind, buffer.Uid, (UnixFileMode)(buffer.Mode & 0xFFF));
    }

    private static partial class Native
    {
        public const int AtFdCwd = -100;            // <fcntl.h> AT_FDCWD
        public const int AtSymlinkNoFollow = 0x100; // <fcntl.h> AT_SYMLINK_NOFOLLOW
        public const uint Wanted = 0x1 | 0x2 | 0x8; // STATX_TYPE | STATX_MODE | STATX_UID (<linux/stat.h>)
        public const int ENOENT = 2;
        public const int ENOTDIR = 20;
        public const ushort TypeMask = 0xF000;      // S_IFMT
        public const ushort TypeSocket = 0xC000;    // S_IFSOCK
        public const ushort TypeSymbolicLink = 0xA000; // S_IFLNK
        public const ushort TypeRegular = 0x8000;   // S_IFREG
        public const ushort TypeDirectory = 0x4000; // S_IFDIR

        [LibraryImport("libc", EntryPoint = "geteuid")]
        public static partial uint GetEffectiveUid();

        [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        public static partial int Statx(int dirfd, string path, int flags, uint mask, out StatxBuffer buffer);

        /// <summary>
        /// struct statx (<c>linux/stat.h</c>): unlike struct stat its layout is the same on every architecture,
        /// 256 bytes; only the fields read here are declared.
        /// </summary>
        [StructLayout(LayoutKind.Explicit, Size = 256)]
        public struct StatxBuffer
        {
            [FieldOffset(0)]
            public uint Mask;

            [FieldOffset(20)]
            public uint Uid;

            [FieldOffset(28)]
            public ushort Mode;
        }
    }
}
