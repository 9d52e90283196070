using System.Diagnostics;
using System.Security.Cryptography;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.Hosting;

namespace KmsPlugin.Cli;

/// <summary>
/// <c>kms-plugin doctor --config FILE</c>: the preflight an operator runs before pointing an apiserver at the plugin.
/// Validates the configuration, the socket path, and each root key (open — which reaches the backend and reads the key
/// for every remote provider —, then wrap + unwrap of a random canary, timed; for a key whose backend has versions,
/// the version it wraps with and whether it follows the backend's current version), and prints the key_id the plugin
/// would report. A failing check names the step and the cause. Changes nothing on disk except what a provider's
/// <c>create: true</c> would create.
/// </summary>
public static class DoctorCommand
{
    public const string Help = """
        Usage: kms-plugin doctor (--config FILE | --dev) [--listen unix:///PATH]

        Checks a configuration before it is used: every field, the socket path and its directory, and each root key
        (opened, which reaches its backend; then a wrap and unwrap of a random canary, timed; for a versioned key, the
        version it uses and whether that version is followed). Prints the key_id the plugin would report.
        Exit 0 when everything passes, 1 when a root key or the socket path has a problem, 2 for a bad configuration.
        """;

    private static readonly byte[] CanaryAad = "k8s-kms-plugin/doctor/v1"u8.ToArray();

    public static async Task<int> RunAsync(PluginConfig config, string source, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(output);
        var ok = true;
        await output.WriteLineAsync($"config:  {source} is valid ({config.RootKeys.Count} root key(s), statusVersion {config.StatusVersion})");

        try
        {
            var state = UnixSocketGuard.Inspect(config.SocketPath);
            await output.WriteLineAsync(state switch
            {
                SocketPathState.DirectoryMissing => $"socket:  {config.SocketPath}: the directory will be created (0750)",
                SocketPathState.StaleSocket => $"socket:  {config.SocketPath}: a stale socket is there (nothing answers); it will be removed at start",
                _ => $"socket:  {config.SocketPath}: free",
            });
        }
        catch (ConfigException e)
        {
            ok = false;
            await output.WriteLineAsync($"socket:  PROBLEM: {e.Message}");
        }

        string? primaryKeyId = null;
        var additionalKeyIds = new List<string>();
        var allOpened = true;
        for (var i = 0; i < config.RootKeys.Count; i++)
        {
            var entry = config.RootKeys[i];
            var role = i == 0 ? "primary" : entry.Role == RootKeyRole.AdditionalWrap ? "additional-wrap" : "decrypt-only";
            var clock = Stopwatch.StartNew();
            var step = "opening the key";
            try
            {
                using var key = RootKeyFactory.Create(entry, CsprngRandomSource.Instance);
                var opened = clock.ElapsedMilliseconds;
                await output.WriteLineAsync($"root key {entry.Name} ({entry.Provider}, {role}): opened in {opened} ms, key_id {key.KeyId} ({KeyIdHash.Of(key.KeyId)})");
                using var timeout = new CancellationTokenSource(config.RootKeyTimeout);
                if (key is IVersionedRootKey versioned)
                {
                    step = "reading the key's current version";
                    await output.WriteLineAsync("         " + await DescribeVersionAsync(versioned, config, timeout.Token));
                }

                var canary = RandomNumberGenerator.GetBytes(32);
                step = "wrapping a canary";
                clock.Restart();
                var wrapped = await key.WrapAsync(canary, CanaryAad, timeout.Token);
                var wrapMs = clock.ElapsedMilliseconds;
                step = "unwrapping the canary";
                clock.Restart();
                using var unwrapped = await key.UnwrapAsync(wrapped, CanaryAad, timeout.Token);
                if (!CryptographicOperations.FixedTimeEquals(unwrapped.Span, canary))
                {
                    throw new KmsPluginException(KmsErrorKind.Corruption, "unwrap returned a different canary");
                }

                await output.WriteLineAsync($"         wrap OK in {wrapMs} ms, unwrap OK in {clock.ElapsedMilliseconds} ms");
                primaryKeyId ??= i == 0 ? key.KeyId : null;
                if (entry.Role == RootKeyRole.AdditionalWrap && i > 0)
                {
                    additionalKeyIds.Add(key.KeyId);
                }
            }
            catch (KmsPluginException e)
            {
                ok = false;
                allOpened = false;
                await output.WriteLineAsync($"root key {entry.Name} ({entry.Provider}, {role}): PROBLEM ({e.Kind}) {step}: {e.Message}");
            }
            catch (OperationCanceledException)
            {
                ok = false;
                allOpened = false;
                await output.WriteLineAsync($"root key {entry.Name} ({entry.Provider}, {role}): PROBLEM {step}: no answer within {GoDuration.Format(config.RootKeyTimeout)}");
            }
        }

        if (primaryKeyId is not null && allOpened)
        {
            try
            {
                // The reported key_id carries an epoch when this wrap set follows another (stateDirectory/key-ids.json); read, never written here.
                var history = config.StateDirectory is { } state && File.Exists(Path.Combine(state, KeyIdHistory.FileName)) ? KeyIdHistory.Open(state) : KeyIdHistory.InMemory();
                var reported = history.Peek(primaryKeyId, additionalKeyIds);
                await output.WriteLineAsync($"key_id:  the plugin will report {reported} ({KeyIdHash.Of(reported)})");
            }
            catch (KmsPluginException e)
            {
                ok = false;
                await output.WriteLineAsync($"state:   PROBLEM: {e.Message}");
            }
        }

        if (config.StateDirectory is { } directory)
        {
            try
            {
                if (Directory.Exists(directory))
                {
                    FileSafety.RequirePrivateDirectory(directory, "plugin", "stateDirectory");
                    await output.WriteLineAsync($"state:   {directory}: private (key_id history {(File.Exists(Path.Combine(directory, KeyIdHistory.FileName)) ? "present" : "not yet written")})");
                }
                else
                {
                    await output.WriteLineAsync($"state:   {directory}: will be created (0700)");
                }
            }
            catch (KmsPluginException e)
            {
                ok = false;
                await output.WriteLineAsync($"state:   PROBLEM: {e.Message}");
            }
        }
        else
        {
            await output.WriteLineAsync("state:   no stateDirectory: the key_id history is kept in memory (a restart forgets which key_ids were used)");
        }

        await output.WriteLineAsync(ok ? "doctor: OK" : "doctor: PROBLEMS FOUND (see above)");
        return ok ? Commands.Ok : Commands.Failed;
    }

    /// <summary>
    /// The version a versioned key wraps with and what happens when the backend moves on. For a followed key this also
    /// reads the backend's current version, the call the background probe makes (it needs the key-read permission).
    /// </summary>
    private static async Task<string> DescribeVersionAsync(IVersionedRootKey key, PluginConfig config, CancellationToken cancellationToken)
    {
        if (!key.FollowsLatestVersion)
        {
            return $"version {key.CurrentVersion}, pinned: new KEKs are wrapped with this version until the configuration changes";
        }

        var latest = await key.ReadLatestVersionAsync(cancellationToken);
        var now = latest == key.CurrentVersion ? "the backend's current version" : $"the backend now reports {latest}, which the plugin would adopt after confirming it";
        return $"version {key.CurrentVersion} ({now}), followed: a new remote version is adopted after {config.StableProbes} "
            + "stable probes (rotation.stableProbes), and the key_id changes then; older versions keep decrypting";
    }
}
