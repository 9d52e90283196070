namespace KmsPlugin.TestSupport;

/// <summary>The checkout's root (the folder holding KmsPlugin.sln), found from the test binaries.</summary>
public static class RepositoryRoot
{
    public static string Path { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (System.IO.File.Exists(System.IO.Path.Combine(dir.FullName, "KmsPlugin.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("cannot find KmsPlugin.sln above " + AppContext.BaseDirectory);
    }
}
