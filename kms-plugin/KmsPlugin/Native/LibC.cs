using System.Runtime.InteropServices;

namespace KmsPlugin.Native;

/// <summary>The few POSIX calls .NET does not expose: process umask and group ownership of the socket.</summary>
internal static partial class LibC
{
    [LibraryImport("libc", EntryPoint = "umask")]
    internal static partial uint Umask(uint mask);

    [LibraryImport("libc", EntryPoint = "chown", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int Chown(string path, int owner, int group);
}
