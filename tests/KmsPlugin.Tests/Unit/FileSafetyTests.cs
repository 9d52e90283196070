using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.Hosting;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.Unit;

/// <summary>
/// Start-up checks on key, PIN and credential files, the state directory and the socket directory (issue 6). The
/// tests hold whether they run as root (CI) or not: "owned by another user" uses a real chown to nobody when
/// running as root and an injected owner lookup otherwise — the same refusal is asserted either way.
/// </summary>
public sealed class FileSafetyTests
{
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private static readonly uint Me = UnixFileStatus.EffectiveUid;

    /// <summary>Another user: nobody (65534) for the real chown as root; any uid but ours for the injected lookup.</summary>
    private static readonly uint Stranger = Me == 0 ? 65534u : Me + 1;
    private static readonly string MeForChown = Me == 0 ? "root" : Me.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public void Status_reports_kind_owner_and_mode_and_null_for_a_missing_path()
    {
        using var dir = new TempDirectory();
        var file = WriteSecret(dir.FilePath("secret"));
        File.CreateSymbolicLink(dir.FilePath("link"), file);

        var status = UnixFileStatus.Read(file, followLinks: false);
        Assert.Equal(new UnixFileStatus(UnixFileKind.Regular, Me, Private), status);
        Assert.Equal("0600", status!.Value.OctalMode);
        Assert.Equal(UnixFileKind.SymbolicLink, UnixFileStatus.Read(dir.FilePath("link"), followLinks: false)!.Value.Kind);
        Assert.Equal(UnixFileKind.Regular, UnixFileStatus.Read(dir.FilePath("link"), followLinks: true)!.Value.Kind);
        Assert.Equal(new UnixFileStatus(UnixFileKind.Directory, Me, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute),
            UnixFileStatus.Read(dir.Path, followLinks: true));
        Assert.Null(UnixFileStatus.Read(dir.FilePath("missing"), followLinks: false));
        Assert.Null(UnixFileStatus.Read(Path.Combine(file, "under-a-file"), followLinks: false));
    }

    [Fact]
    public void The_effective_uid_is_the_owner_of_a_file_this_process_creates()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.FilePath("mine"), "");
        Assert.Equal(RunTool("id", "-u"), Me.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(Me, UnixFileStatus.Read(dir.FilePath("mine"), followLinks: false)!.Value.OwnerUid);
    }

    [Fact]
    public void A_0600_file_of_ours_in_a_private_directory_is_accepted()
    {
        using var dir = new TempDirectory();
        FileSafety.RequireSecretFile(WriteSecret(dir.FilePath("secret")), "test", "keyFile");
    }

    [Theory]
    [InlineData(UnixFileMode.GroupRead)]
    [InlineData(UnixFileMode.GroupWrite)]
    [InlineData(UnixFileMode.OtherRead)]
    [InlineData(UnixFileMode.OtherExecute)]
    public void A_file_with_group_or_other_bits_is_refused_with_chmod_600(UnixFileMode extra)
    {
        using var dir = new TempDirectory();
        var file = WriteSecret(dir.FilePath("secret"), Private | extra);

        var error = Assert.Throws<KmsPluginException>(() => FileSafety.RequireSecretFile(file, "test", "keyFile"));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains($"test: keyFile {file} is accessible by group or others (mode 0", error.Message, StringComparison.Ordinal);
        Assert.EndsWith($"run: chmod 600 {file}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_file_is_refused_naming_it()
    {
        using var dir = new TempDirectory();
        var error = Assert.Throws<KmsPluginException>(() => FileSafety.RequireSecretFile(dir.FilePath("nope"), "test", "pinFile"));
        Assert.Equal($"test: pinFile {dir.FilePath("nope")} does not exist", error.Message);
    }

    [Fact]
    public void A_file_owned_by_another_user_is_refused_with_the_chown_that_fixes_it()
    {
        using var dir = new TempDirectory();
        var file = WriteSecret(dir.FilePath("secret"));

        var error = Me == 0
            ? RefusedAfterChown(file, () => FileSafety.RequireSecretFile(file, "test", "pinFile"))
            : Assert.Throws<KmsPluginException>(() => RulesOwning(file, Stranger).RequireSecretFile(file, "test", "pinFile"));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains($"{file} is owned by uid {Stranger}, not by the plugin's user (uid {Me}) or root", error.Message, StringComparison.Ordinal);
        Assert.EndsWith($"run: chown {MeForChown} {file}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void With_an_injected_owner_a_file_of_another_uid_is_refused_whoever_runs_the_tests()
    {
        // The non-root path of the test above, run always, so it is proven on CI (root) too.
        using var dir = new TempDirectory();
        var file = WriteSecret(dir.FilePath("secret"));

        var error = Assert.Throws<KmsPluginException>(() => RulesOwning(file, 4242).RequireSecretFile(file, "test", "pinFile"));

        Assert.Contains($"{file} is owned by uid 4242", error.Message, StringComparison.Ordinal);
        Assert.EndsWith($"run: chown {MeForChown} {file}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_root_owned_file_is_accepted_for_a_plugin_running_as_another_user()
    {
        using var dir = new TempDirectory();
        var file = WriteSecret(dir.FilePath("secret"));

        // The plugin runs as uid 65532; the file is root's, its directory the plugin's.
        var rules = new FileSafetyRules((path, follow) => UnixFileStatus.Read(path, follow) is { } status
            ? status with { OwnerUid = path == file ? 0u : 65532u }
            : null, effectiveUid: 65532);

        rules.RequireSecretFile(file, "test", "pinFile");
    }

    [Fact]
    public void A_file_in_a_group_writable_directory_is_refused_with_chmod_go_w()
    {
        using var dir = new TempDirectory();
        var shared = MakeDirectory(dir.FilePath("shared"), (UnixFileMode)0b111_111_101); // 0775
        var file = WriteSecret(Path.Combine(shared, "secret"));

        var error = Assert.Throws<KmsPluginException>(() => FileSafety.RequireSecretFile(file, "test", "keyFile"));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains($"the directory {shared} is writable by group or others (mode 0775), so another user could replace what is in it", error.Message, StringComparison.Ordinal);
        Assert.EndsWith($"run: chmod go-w {shared}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_in_a_world_writable_sticky_directory_is_accepted()
    {
        // /tmp and Kubernetes secret volumes: with the sticky bit only an entry's owner may rename or delete it.
        using var dir = new TempDirectory();
        var sticky = MakeDirectory(dir.FilePath("sticky"), (UnixFileMode)0b1_111_111_111); // 1777
        FileSafety.RequireSecretFile(WriteSecret(Path.Combine(sticky, "secret")), "test", "keyFile");
    }

    [Fact]
    public void A_file_in_a_directory_owned_by_another_user_is_refused_with_the_chown_that_fixes_it()
    {
        using var dir = new TempDirectory();
        var theirs = MakeDirectory(dir.FilePath("theirs"), (UnixFileMode)0b111_101_101); // 0755
        var file = WriteSecret(Path.Combine(theirs, "secret"));

        var error = Me == 0
            ? RefusedAfterChown(theirs, () => FileSafety.RequireSecretFile(file, "test", "keyFile"))
            : Assert.Throws<KmsPluginException>(() => RulesOwning(theirs, Stranger).RequireSecretFile(file, "test", "keyFile"));

        Assert.Contains($"the directory {theirs} is owned by uid {Stranger}", error.Message, StringComparison.Ordinal);
        Assert.EndsWith($"run: chown {MeForChown} {theirs}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_Kubernetes_secret_volume_layout_of_symbolic_links_is_accepted()
    {
        // kubelet's atomic writer: vol/pin -> ..data/pin, vol/..data -> ..2025_01_01_00_00_00.1, in a sticky volume root.
        using var dir = new TempDirectory();
        var volume = MakeDirectory(dir.FilePath("vol"), (UnixFileMode)0b1_111_111_111);
        var version = MakeDirectory(Path.Combine(volume, "..2025_01_01_00_00_00.1"), (UnixFileMode)0b111_101_101);
        WriteSecret(Path.Combine(version, "pin"));
        File.CreateSymbolicLink(Path.Combine(volume, "..data"), "..2025_01_01_00_00_00.1");
        File.CreateSymbolicLink(Path.Combine(volume, "pin"), "..data/pin");

        FileSafety.RequireSecretFile(Path.Combine(volume, "pin"), "test", "pinFile");
    }

    [Fact]
    public void A_symbolic_link_to_a_file_in_a_world_writable_directory_is_refused()
    {
        using var dir = new TempDirectory();
        var open = MakeDirectory(dir.FilePath("open"), (UnixFileMode)0b111_111_111); // 0777, no sticky bit
        var target = WriteSecret(Path.Combine(open, "secret"));
        var link = dir.FilePath("pin");
        File.CreateSymbolicLink(link, target);

        var error = Assert.Throws<KmsPluginException>(() => FileSafety.RequireSecretFile(link, "test", "pinFile"));

        Assert.Contains($"test: pinFile {link}: the directory {open} is writable by group or others (mode 0777)", error.Message, StringComparison.Ordinal);
        Assert.Contains($"run: chmod go-w {open} (it holds {target}, on the way to the file)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_symbolic_link_owned_by_another_user_is_refused_with_chown_h()
    {
        using var dir = new TempDirectory();
        var target = WriteSecret(dir.FilePath("secret"));
        var link = dir.FilePath("pin");
        File.CreateSymbolicLink(link, target);

        var error = Me == 0
            ? RefusedAfterChown(link, () => FileSafety.RequireSecretFile(link, "test", "pinFile"), noDereference: true)
            : Assert.Throws<KmsPluginException>(() => RulesOwning(link, Stranger).RequireSecretFile(link, "test", "pinFile"));

        Assert.Contains($"the symbolic link {link} is owned by uid {Stranger}", error.Message, StringComparison.Ordinal);
        Assert.EndsWith($"run: chown -h {MeForChown} {link}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_dangling_symbolic_link_is_refused_naming_its_target()
    {
        using var dir = new TempDirectory();
        var link = dir.FilePath("pin");
        File.CreateSymbolicLink(link, dir.FilePath("gone"));

        var error = Assert.Throws<KmsPluginException>(() => FileSafety.RequireSecretFile(link, "test", "pinFile"));

        Assert.Equal($"test: pinFile {link} is a symbolic link to {dir.FilePath("gone")}, which does not exist", error.Message);
    }

    [Fact]
    public void A_directory_or_a_socket_is_not_a_secret_file()
    {
        using var dir = new TempDirectory();
        var sub = MakeDirectory(dir.FilePath("sub"), (UnixFileMode)0b111_000_000);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(dir.FilePath("s")));
        File.SetUnixFileMode(dir.FilePath("s"), Private);

        Assert.Contains("is not a regular file (a directory)", Assert.Throws<KmsPluginException>(() => FileSafety.RequireSecretFile(sub, "test", "keyFile")).Message, StringComparison.Ordinal);
        Assert.Contains("is not a regular file (a socket)", Assert.Throws<KmsPluginException>(() => FileSafety.RequireSecretFile(dir.FilePath("s"), "test", "keyFile")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_private_state_directory_is_accepted_and_a_missing_one_is_created_0700_on_request()
    {
        using var dir = new TempDirectory();
        FileSafety.RequirePrivateDirectory(MakeDirectory(dir.FilePath("state"), (UnixFileMode)0b111_000_000), "test", "stateDirectory");

        var created = dir.FilePath("new-state");
        FileSafety.RequirePrivateDirectory(created, "test", "stateDirectory", create: true);

        Assert.Equal(new UnixFileStatus(UnixFileKind.Directory, Me, (UnixFileMode)0b111_000_000), UnixFileStatus.Read(created, followLinks: false));
    }

    [Fact]
    public void A_missing_state_directory_is_refused_with_the_install_command_unless_creation_is_asked_for()
    {
        using var dir = new TempDirectory();
        var error = Assert.Throws<KmsPluginException>(() => FileSafety.RequirePrivateDirectory(dir.FilePath("state"), "test", "stateDirectory"));
        Assert.Equal($"test: stateDirectory {dir.FilePath("state")} does not exist; run: install -d -m 0700 {dir.FilePath("state")}", error.Message);
    }

    [Fact]
    public void A_state_directory_others_can_read_is_refused_with_chmod_700()
    {
        using var dir = new TempDirectory();
        var state = MakeDirectory(dir.FilePath("state"), (UnixFileMode)0b111_101_000); // 0750

        var error = Assert.Throws<KmsPluginException>(() => FileSafety.RequirePrivateDirectory(state, "test", "stateDirectory"));

        Assert.Equal($"test: stateDirectory {state} is accessible by group or others (mode 0750); run: chmod 700 {state}", error.Message);
    }

    [Fact]
    public void A_state_directory_owned_by_root_is_refused_for_a_plugin_running_as_another_user()
    {
        // The plugin writes there: root's directory is not the plugin's, whatever its mode.
        using var dir = new TempDirectory();
        var state = MakeDirectory(dir.FilePath("state"), (UnixFileMode)0b111_000_000);
        var rules = new FileSafetyRules((path, follow) => UnixFileStatus.Read(path, follow) is { } status
            ? status with { OwnerUid = path == state ? 0u : 65532u }
            : null, effectiveUid: 65532);

        var error = Assert.Throws<KmsPluginException>(() => rules.RequirePrivateDirectory(state, "test", "stateDirectory", create: false));

        Assert.Equal($"test: stateDirectory {state} is owned by uid 0, not by the plugin's user (uid 65532); run: chown 65532 {state}", error.Message);
    }

    [Fact]
    public void A_state_directory_in_a_group_writable_parent_is_refused_and_not_created()
    {
        using var dir = new TempDirectory();
        var shared = MakeDirectory(dir.FilePath("shared"), (UnixFileMode)0b111_111_000); // 0770
        var state = Path.Combine(shared, "state");

        var error = Assert.Throws<KmsPluginException>(() => FileSafety.RequirePrivateDirectory(state, "test", "stateDirectory", create: true));

        Assert.EndsWith($"run: chmod go-w {shared}", error.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(state));
    }

    [Fact]
    public void A_local_root_key_in_a_group_writable_directory_is_refused()
    {
        using var dir = new TempDirectory();
        var shared = MakeDirectory(dir.FilePath("shared"), (UnixFileMode)0b111_111_101);
        var keyFile = Path.Combine(shared, "root.key");
        File.WriteAllBytes(keyFile, new byte[LocalRootKey.KeyBytes]);
        File.SetUnixFileMode(keyFile, Private);

        var error = Assert.Throws<KmsPluginException>(() => LocalRootKey.Open("dev", keyFile, create: false));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.StartsWith($"local root key: keyFile {keyFile}: the directory {shared} is writable by group or others", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_credential_file_checked_by_SecretFiles_gets_the_same_checks()
    {
        // SecretFiles.RequireOwnerOnly is what the azure and gcp credential files go through.
        using var dir = new TempDirectory();
        var shared = MakeDirectory(dir.FilePath("shared"), (UnixFileMode)0b111_111_101);
        var secret = WriteSecret(Path.Combine(shared, "client-secret"));

        var error = Assert.Throws<KmsPluginException>(() => SecretFiles.RequireOwnerOnly(secret, "azure root key 'akv'", "credential.secretFile"));

        Assert.StartsWith($"azure root key 'akv': credential.secretFile {secret}: the directory {shared}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_group_writable_socket_directory_is_refused_with_chmod_go_w()
    {
        using var dir = new TempDirectory();
        var run = MakeDirectory(dir.FilePath("run"), (UnixFileMode)0b111_111_000); // 0770

        var error = Assert.Throws<ConfigException>(() => UnixSocketGuard.Inspect(Path.Combine(run, "kms.sock")));

        Assert.Equal("listen", error.Field);
        Assert.EndsWith($"run: chmod go-w {run}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_socket_directory_owned_by_another_user_is_refused_with_the_chown_that_fixes_it()
    {
        using var dir = new TempDirectory();
        var run = MakeDirectory(dir.FilePath("run"), (UnixFileMode)0b111_101_000); // 0750
        var socket = Path.Combine(run, "kms.sock");

        // As root the real guard sees a directory chowned to nobody; otherwise the same rule with an injected owner.
        var message = Me == 0
            ? RefusedAfterChown(run, () => UnixSocketGuard.Inspect(socket))
            : RulesOwning(run, Stranger).DescribeUnsafeDirectory(run)!;

        Assert.Contains($"the directory {run} is owned by uid {Stranger}", message, StringComparison.Ordinal);
        Assert.EndsWith($"run: chown {MeForChown} {run}", message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_private_socket_directory_is_accepted()
    {
        using var dir = new TempDirectory();
        var run = MakeDirectory(dir.FilePath("run"), (UnixFileMode)0b111_101_000);
        Assert.Equal(SocketPathState.Free, UnixSocketGuard.Inspect(Path.Combine(run, "kms.sock")));
    }

    private static string WriteSecret(string path, UnixFileMode mode = Private)
    {
        File.WriteAllText(path, "secret");
        File.SetUnixFileMode(path, mode);
        return path;
    }

    private static string MakeDirectory(string path, UnixFileMode mode)
    {
        Directory.CreateDirectory(path);
        File.SetUnixFileMode(path, mode); // explicit: CreateDirectory's mode is filtered by the umask
        return path;
    }

    /// <summary>Rules that see <paramref name="path"/> (not what it links to) as owned by <paramref name="owner"/>.</summary>
    private static FileSafetyRules RulesOwning(string path, uint owner) =>
        new((candidate, follow) => UnixFileStatus.Read(candidate, follow) is { } status
            ? candidate == path ? status with { OwnerUid = owner } : status
            : null, Me);

    /// <summary>As root: gives <paramref name="path"/> to nobody, runs the check, and returns the refusal it must give.</summary>
    private static KmsPluginException RefusedAfterChown(string path, Action check, bool noDereference = false)
    {
        Chown(path, noDereference);
        return Assert.Throws<KmsPluginException>(check);
    }

    private static string RefusedAfterChown(string path, Func<SocketPathState> check)
    {
        Chown(path, noDereference: false);
        return Assert.Throws<ConfigException>(() => check()).Message;
    }

    private static void Chown(string path, bool noDereference)
    {
        var arguments = noDereference ? new[] { "-h", Stranger.ToString(CultureInfo.InvariantCulture), path } : [Stranger.ToString(CultureInfo.InvariantCulture), path];
        _ = RunTool("chown", arguments);
        Assert.Equal(Stranger, UnixFileStatus.Read(path, followLinks: false)!.Value.OwnerUid);
    }

    private static string RunTool(string tool, params string[] arguments)
    {
        var startInfo = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        using var process = Process.Start(startInfo)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{tool} {string.Join(' ', arguments)}: {process.StandardError.ReadToEnd()}");
        return output.Trim();
    }
}
