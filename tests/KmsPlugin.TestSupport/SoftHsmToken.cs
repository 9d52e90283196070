using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace KmsPlugin.TestSupport;

/// <summary>
/// A real SoftHSM2 token with an AES-256 key, made by <c>hsm/create-softhsm-token.sh</c> in a private temp
/// directory (its own softhsm2.conf, token directory and 0600 PIN files). Never skips: if SoftHSM2 or OpenSC is
/// missing it throws, saying what to install.
/// </summary>
/// <remarks>
/// SoftHSM2 reads SOFTHSM2_CONF once, in C_Initialize, and enumerates its tokens then; so a process can use only
/// the token directory that was configured before the module was first initialised, and tokens created later are
/// invisible to it (keys added later are seen). Hence two ways to get a token:
/// <list type="bullet">
/// <item><see cref="Shared"/> / <see cref="SharedSecondary"/> / <see cref="TakeExpendable"/>: the in-process tokens.
/// The first access creates all of them in one directory and points this process's SOFTHSM2_CONF at it — through libc's setenv, because
/// Environment.SetEnvironmentVariable only changes .NET's copy and the native module calls getenv. Touch them before
/// anything in the test process loads libsofthsm2.so.</item>
/// <item><see cref="Create"/>: a token directory of its own for a child process (pass <see cref="Environment"/> or
/// call <see cref="ApplyTo"/>); it never changes this process's environment.</item>
/// </list>
/// </remarks>
public sealed partial class SoftHsmToken : IDisposable
{
    public const string InstallHint = "apt-get install -y softhsm2 opensc";
    public const string ConfVariable = "SOFTHSM2_CONF";

    /// <summary>How many <see cref="TakeExpendable"/> tokens each test process gets (about 0.4 s each to create).</summary>
    public const int ExpendableTokenCount = 4;

    private static readonly Lazy<SharedSet> SharedTokens = new(CreateShared, LazyThreadSafetyMode.ExecutionAndPublication);
    private static int _expendableTaken;

    private static readonly string[] LibraryCandidates =
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
        "/usr/lib64/softhsm/libsofthsm2.so",
        "/usr/lib64/pkcs11/libsofthsm2.so",
    ];

    private readonly TempDirectory? _ownedDirectory;

    private SoftHsmToken(TempDirectory? ownedDirectory, string directory, string library, string tokenLabel, string keyLabel,
        string keyIdHex, string pinFile, string soPinFile)
    {
        _ownedDirectory = ownedDirectory;
        Directory = directory;
        Library = library;
        ConfPath = System.IO.Path.Combine(directory, "softhsm2.conf");
        TokenLabel = tokenLabel;
        KeyLabel = keyLabel;
        KeyIdHex = keyIdHex;
        PinFile = pinFile;
        SoPinFile = soPinFile;
        Environment = new Dictionary<string, string> { [ConfVariable] = ConfPath };
    }

    /// <summary>
    /// The process-wide token for in-process tests: label <c>kms</c>, keys <c>kek1</c> (CKA_ID 01) and <c>kek2</c>
    /// (CKA_ID 02). Sets SOFTHSM2_CONF for this process on first use.
    /// </summary>
    public static SoftHsmToken Shared => SharedTokens.Value.Primary;

    /// <summary>
    /// A second in-process token in the same directory: label <c>kms-2</c>, its own PIN, key <c>kek1</c> (CKA_ID 01).
    /// For tests that need a token no other test logs in to (PIN handling: login state is per token per process),
    /// or two tokens with the same key label.
    /// </summary>
    public static SoftHsmToken SharedSecondary => SharedTokens.Value.Secondary;

    /// <summary>
    /// An in-process token of its own for a test that breaks it (deletes it, replaces its key, closes its sessions):
    /// label <c>kms-xN</c>, its own PIN, key <c>kek1</c> (CKA_ID 01). Each call hands out a different one; they are
    /// created with <see cref="Shared"/>, before the module loads, because SoftHSM2 sees only tokens that existed
    /// when it was initialised. Throws when all <see cref="ExpendableTokenCount"/> are taken.
    /// </summary>
    public static SoftHsmToken TakeExpendable()
    {
        var tokens = SharedTokens.Value.Expendable;
        var index = Interlocked.Increment(ref _expendableTaken) - 1;
        return index < tokens.Count
            ? tokens[index]
            : throw new InvalidOperationException($"all {ExpendableTokenCount} expendable SoftHSM2 tokens of this test process are taken; raise SoftHsmToken.ExpendableTokenCount");
    }

    /// <summary>The token directory (holds softhsm2.conf, tokens/ and the PIN files).</summary>
    public string Directory { get; }

    /// <summary>Absolute path of libsofthsm2.so: the plugin's <c>library</c> option.</summary>
    public string Library { get; }

    /// <summary>The private softhsm2.conf; SOFTHSM2_CONF must name it in whatever process loads <see cref="Library"/>.</summary>
    public string ConfPath { get; }

    public string TokenLabel { get; }

    /// <summary>CKA_LABEL of the token's first AES-256 key.</summary>
    public string KeyLabel { get; }

    /// <summary>CKA_ID of the token's first AES-256 key, lowercase hex.</summary>
    public string KeyIdHex { get; }

    /// <summary>The 0600 file holding the user PIN (no trailing newline): the plugin's <c>pinFile</c> option.</summary>
    public string PinFile { get; }

    /// <summary>The 0600 file holding the SO PIN.</summary>
    public string SoPinFile { get; }

    /// <summary>Environment a child process needs to see this token (SOFTHSM2_CONF).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; }

    /// <summary>A fresh token in a directory of its own, for a child process. This process's environment is untouched.</summary>
    public static SoftHsmToken Create(string tokenLabel = "kms", string keyLabel = "kek1", string keyIdHex = "01")
    {
        var library = FindPrerequisites();
        var directory = new TempDirectory();
        try
        {
            var pinFile = System.IO.Path.Combine(directory.Path, "user.pin");
            var soPinFile = System.IO.Path.Combine(directory.Path, "so.pin");
            RunScript(library, directory.Path, tokenLabel, keyLabel, keyIdHex, pinFile, soPinFile, allowDuplicateLabel: false);
            return new SoftHsmToken(directory, directory.Path, library, tokenLabel, keyLabel, keyIdHex.ToLowerInvariant(), pinFile, soPinFile);
        }
        catch
        {
            directory.Dispose();
            throw;
        }
    }

    /// <summary>Sets SOFTHSM2_CONF for a child process so it sees this token's directory.</summary>
    public void ApplyTo(ProcessStartInfo startInfo)
    {
        ArgumentNullException.ThrowIfNull(startInfo);
        foreach (var (name, value) in Environment)
        {
            startInfo.Environment[name] = value;
        }
    }

    /// <summary>
    /// Generates another AES-256 key on this token (rotation tests). A process that already initialised the module
    /// sees it too (SoftHSM2 rescans objects), unlike a new token. With <paramref name="allowDuplicateLabel"/> a key
    /// is generated even when one with that label exists (tests of ambiguous configuration).
    /// </summary>
    public void AddKey(string keyLabel, string keyIdHex, bool allowDuplicateLabel = false) =>
        RunScript(Library, Directory, TokenLabel, keyLabel, keyIdHex, PinFile, SoPinFile, allowDuplicateLabel);

    /// <summary>
    /// Creates another token (own PIN files) in this token's directory. Only processes that initialise the module
    /// afterwards see it: SoftHSM2 enumerates tokens at C_Initialize.
    /// </summary>
    public SoftHsmToken AddToken(string tokenLabel, string keyLabel = "kek1", string keyIdHex = "01")
    {
        var stem = SafeFileName().Replace(tokenLabel, "_");
        var pinFile = System.IO.Path.Combine(Directory, $"user-{stem}.pin");
        var soPinFile = System.IO.Path.Combine(Directory, $"so-{stem}.pin");
        RunScript(Library, Directory, tokenLabel, keyLabel, keyIdHex, pinFile, soPinFile, allowDuplicateLabel: false);
        return new SoftHsmToken(null, Directory, Library, tokenLabel, keyLabel, keyIdHex.ToLowerInvariant(), pinFile, soPinFile);
    }

    /// <summary>
    /// Deletes the token the way an operator would (<c>softhsm2-util --delete-token</c>): its directory under the
    /// token directory goes, with its keys. For a process that has the module loaded this is a token pulled out.
    /// </summary>
    public void DeleteToken() => Run("softhsm2-util", ["--delete-token", "--token", TokenLabel], ConfPath);

    /// <summary>
    /// Deletes the token's first key and generates a new AES-256 key under the same label and CKA_ID — a different key
    /// that a lookup by label/id cannot tell from the old one.
    /// </summary>
    public void RegenerateKey() => RunScript(Library, Directory, TokenLabel, KeyLabel, KeyIdHex, PinFile, SoPinFile, allowDuplicateLabel: false, replaceKey: true);

    /// <summary>Removes the token directory if this instance created it (<see cref="Create"/>); shared tokens go at process exit.</summary>
    public void Dispose() => _ownedDirectory?.Dispose();

    private static SharedSet CreateShared()
    {
        var library = FindPrerequisites();
        var directory = new TempDirectory();
        try
        {
            var pinFile = System.IO.Path.Combine(directory.Path, "user.pin");
            var soPinFile = System.IO.Path.Combine(directory.Path, "so.pin");
            RunScript(library, directory.Path, "kms", "kek1", "01", pinFile, soPinFile, allowDuplicateLabel: false);
            var primary = new SoftHsmToken(null, directory.Path, library, "kms", "kek1", "01", pinFile, soPinFile);
            primary.AddKey("kek2", "02");
            var secondary = primary.AddToken("kms-2");
            var expendable = Enumerable.Range(1, ExpendableTokenCount).Select(i => primary.AddToken($"kms-x{i}")).ToList();

            // Native setenv, not only Environment.SetEnvironmentVariable: libsofthsm2 reads it with getenv(3).
            if (SetEnv(ConfVariable, primary.ConfPath, 1) != 0)
            {
                throw new InvalidOperationException($"setenv({ConfVariable}) failed: errno {Marshal.GetLastPInvokeError()}");
            }

            System.Environment.SetEnvironmentVariable(ConfVariable, primary.ConfPath);
            AppDomain.CurrentDomain.ProcessExit += (_, _) => directory.Dispose();
            return new SharedSet(primary, secondary, expendable);
        }
        catch
        {
            directory.Dispose();
            throw;
        }
    }

    /// <summary>Checks softhsm2-util, pkcs11-tool and libsofthsm2.so are installed; returns the module path.</summary>
    private static string FindPrerequisites()
    {
        foreach (var tool in new[] { "softhsm2-util", "pkcs11-tool" })
        {
            if (FindOnPath(tool) is null)
            {
                throw new InvalidOperationException(
                    $"SoftHSM2 token fixture: '{tool}' is not on PATH. The PKCS#11 tests run against a real SoftHSM2 token; install it with: {InstallHint}");
            }
        }

        return Array.Find(LibraryCandidates, System.IO.File.Exists)
            ?? throw new InvalidOperationException(
                $"SoftHSM2 token fixture: libsofthsm2.so not found (looked in {string.Join(", ", LibraryCandidates)}); install it with: {InstallHint}");
    }

    private static string? FindOnPath(string tool)
    {
        var path = System.Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = System.IO.Path.Combine(dir, tool);
            if (System.IO.File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static void RunScript(string library, string directory, string tokenLabel, string keyLabel, string keyIdHex,
        string pinFile, string soPinFile, bool allowDuplicateLabel, bool replaceKey = false)
    {
        var script = System.IO.Path.Combine(RepositoryRoot.Path, "hsm", "create-softhsm-token.sh");
        var startInfo = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
                 {
                     script, "--token-dir", directory, "--token-label", tokenLabel, "--key-label", keyLabel, "--key-id", keyIdHex,
                     "--pin-file", pinFile, "--so-pin-file", soPinFile, "--module", library,
                 })
        {
            startInfo.ArgumentList.Add(argument);
        }

        if (allowDuplicateLabel)
        {
            startInfo.ArgumentList.Add("--allow-duplicate-label");
        }

        if (replaceKey)
        {
            startInfo.ArgumentList.Add("--replace-key");
        }

        // The script writes its own softhsm2.conf and exports SOFTHSM2_CONF itself; do not let ours leak in.
        startInfo.Environment.Remove(ConfVariable);

        using var process = Process.Start(startInfo) ?? throw new InvalidOperationException("cannot start bash for " + script);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{script} did not finish within 60 s");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{script} failed with exit code {process.ExitCode} (if SoftHSM2/OpenSC are missing: {InstallHint}):\n{stderr.Result}{stdout.Result}");
        }
    }

    /// <summary>Runs a SoftHSM2/OpenSC tool against the token directory of <paramref name="confPath"/>.</summary>
    private static void Run(string tool, string[] arguments, string confPath)
    {
        var startInfo = new ProcessStartInfo(tool)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        startInfo.Environment[ConfVariable] = confPath;
        using var process = Process.Start(startInfo) ?? throw new InvalidOperationException($"cannot start {tool} (install it with: {InstallHint})");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{tool} did not finish within 60 s");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', arguments)} failed with exit code {process.ExitCode}:\n{stderr.Result}{stdout.Result}");
        }
    }

    [GeneratedRegex("[^A-Za-z0-9_.-]")]
    private static partial Regex SafeFileName();

    private sealed record SharedSet(SoftHsmToken Primary, SoftHsmToken Secondary, IReadOnlyList<SoftHsmToken> Expendable);

    [DllImport("libc", EntryPoint = "setenv", SetLastError = true)]
    private static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
}
