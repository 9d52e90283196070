using System.Diagnostics;
using System.Security.Cryptography;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.Security;
using KmsPlugin.Hosting;

namespace KmsPlugin.Cli;

/// <summary>
/// <c>kms-plugin doctor --config FILE</c>: the preflight an operator runs before pointing an apiserver at the plugin.
/// Validates the configuration, the socket path, and each root key (open, then wrap + unwrap of a random canary,
/// timed), and prints the key_id the plugin would report. Changes nothing on disk except what a provider's
/// <c>create: true</c> would create.
/// </summary>
public static class DoctorCommand
{
    public const string Help = """
        Usage: kms-plugin doctor (--config FILE | --dev) [--listen unix:///PATH]

        Checks a configuration before it is used: every field, the socket path and its directory, and each root key
        (opened, then a wrap and unwrap of a random canary, timed). Prints the key_id the plugin would report.
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
        for (var i = 0; i < config.RootKeys.Count; i++)
        {
            var entry = config.RootKeys[i];
            var role = i == 0 ? "primary" : "decrypt-only";
            var clock = Stopwatch.StartNew();
            try
            {
                using var key = RootKeyFactory.Create(entry, CsprngRandomSource.Instance);
                var opened = clock.ElapsedMilliseconds;
                await output.WriteLineAsync($"root key {entry.Name} ({entry.Provider}, {role}): opened in {opened} ms, key_id {key.KeyId} ({KeyIdHash.Of(key.KeyId)})");
                using var timeout = new CancellationTokenSource(config.RootKeyTimeout);
                var canary = RandomNumberGenerator.GetBytes(32);
                clock.Restart();
                var wrapped = await key.WrapAsync(canary, CanaryAad, timeout.Token);
                var wrapMs = clock.ElapsedMilliseconds;
                clock.Restart();
                using var unwrapped = await key.UnwrapAsync(wrapped, CanaryAad, timeout.Token);
                if (!CryptographicOperations.FixedTimeEquals(unwrapped.Span, canary))
                {
                    throw new KmsPluginException(KmsErrorKind.Corruption, "unwrap returned a different canary");
                }

                await output.WriteLineAsync($"         wrap OK in {wrapMs} ms, unwrap OK in {clock.ElapsedMilliseconds} ms");
                primaryKeyId ??= i == 0 ? key.KeyId : null;
            }
            catch (KmsPluginException e)
            {
                ok = false;
                await output.WriteLineAsync($"root key {entry.Name} ({entry.Provider}, {role}): PROBLEM ({e.Kind}): {e.Message}");
            }
            catch (OperationCanceledException)
            {
                ok = false;
                await output.WriteLineAsync($"root key {entry.Name} ({entry.Provider}, {role}): PROBLEM: no answer within {GoDuration.Format(config.RootKeyTimeout)}");
            }
        }

        if (primaryKeyId is not null)
        {
            await output.WriteLineAsync($"key_id:  the plugin will report {primaryKeyId} ({KeyIdHash.Of(primaryKeyId)})");
        }

        await output.WriteLineAsync(ok ? "doctor: OK" : "doctor: PROBLEMS FOUND (see above)");
        return ok ? Commands.Ok : Commands.Failed;
    }
}
