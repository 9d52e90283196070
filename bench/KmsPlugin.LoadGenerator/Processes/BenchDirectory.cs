namespace KmsPlugin.LoadGenerator.Processes;

/// <summary>A private (0700) working directory under /tmp for one scenario's sockets, key files and configs; short
/// enough for a socket path (sun_path is 108 bytes). Removed on dispose.</summary>
internal sealed class BenchDirectory : IDisposable
{
    public BenchDirectory()
    {
        Path = Directory.CreateTempSubdirectory("kpb").FullName;
        File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
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
            // best effort: a child may still be closing a file
        }
    }
}
