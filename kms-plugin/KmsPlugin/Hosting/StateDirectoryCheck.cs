using KmsPlugin.Core.Errors;

namespace KmsPlugin.Hosting;

/// <summary>
/// The state directory decides which key_id the plugin reports: anyone who can write it can make the plugin reuse a
/// key_id. So it must be the plugin's alone (no group or other access), like the key and PIN files.
/// </summary>
public static class StateDirectoryCheck
{
    private const UnixFileMode GroupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    public static void RequirePrivate(string directory)
    {
        var info = new DirectoryInfo(directory);
        if (!info.Exists)
        {
            throw new KmsPluginException(KmsErrorKind.Internal, $"stateDirectory {directory} does not exist");
        }

        if ((info.UnixFileMode & GroupOrOther) != 0)
        {
            throw new KmsPluginException(KmsErrorKind.Internal,
                $"stateDirectory {directory} is accessible by group or others (mode {Convert.ToString((int)info.UnixFileMode, 8)}); run: chmod 700 {directory}");
        }
    }
}
