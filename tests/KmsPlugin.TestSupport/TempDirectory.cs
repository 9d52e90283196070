namespace KmsPlugin.TestSupport;

/// <summary>
/// A private (0700) directory under /tmp, removed on dispose. Short paths on purpose: a Unix socket path must fit
/// in sun_path (108 bytes).
/// </summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = Directory.CreateTempSubdirectory("kp").FullName;
        System.IO.File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public string Path { get; }

    public string FilePath(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // best effort: a process under test may still hold a file
        }
    }
}
