using System.Security.Cryptography;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Hosting;

/// <summary>What a reload attempt did (also the <c>outcome</c> label of the reload metric).</summary>
public enum ConfigReloadOutcome
{
    Unchanged,
    Applied,
    Rejected,
}

/// <summary>
/// Applies a changed configuration file without a restart (issue 4): <c>rootKeys</c> (add, remove, reorder, change
/// roles — the primary's change changes the key_id) and <c>rotation</c>. Anything else (socket, status version, KEK
/// limits, health port, logging, ...) needs a restart: such a change, or a file that does not parse or validate, or a
/// root key that cannot be opened, is rejected with a log line naming the reason, and the running configuration
/// keeps serving untouched. Reloads are serialised with followed-version updates by <see cref="ActiveRootKeys"/>.
/// </summary>
public sealed partial class ConfigReloader : IDisposable
{
    private readonly ActiveRootKeys _keys;
    private readonly RootKeyRingBuilder _builder;
    private readonly RootKeyVersionFollower _follower;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private byte[]? _lastSeen;
    private bool _lastRejected;
    private long _applied;
    private long _rejected;

    public ConfigReloader(PluginConfig initial, ActiveRootKeys keys, RootKeyRingBuilder builder, RootKeyVersionFollower follower, ILogger<ConfigReloader> logger)
    {
        ArgumentNullException.ThrowIfNull(initial);
        Current = initial;
        _keys = keys;
        _builder = builder;
        _follower = follower;
        _logger = logger;
        _lastSeen = initial.SourcePath is { } path && TryHash(path) is { } hash ? hash : null;
        follower.StableProbes = initial.StableProbes;
    }

    /// <summary>The configuration in effect.</summary>
    public PluginConfig Current { get; private set; }

    public long AppliedCount => Interlocked.Read(ref _applied);

    public long RejectedCount => Interlocked.Read(ref _rejected);

    /// <summary>Raised after each attempt that read a changed file (for metrics).</summary>
    public event Action<ConfigReloadOutcome>? Reloaded;

    /// <summary>
    /// Re-reads the file; applies it when its content changed (or, with <paramref name="force"/> — SIGHUP — also when a
    /// rejected file is unchanged, e.g. after the missing permission was granted) and everything in it can be applied.
    /// </summary>
    public async Task<ConfigReloadOutcome> ReloadAsync(CancellationToken cancellationToken, bool force = false)
    {
        if (Current.SourcePath is not { } path)
        {
            return ConfigReloadOutcome.Unchanged;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            var hash = TryHash(path);
            var sameFile = hash is not null && _lastSeen is not null && hash.AsSpan().SequenceEqual(_lastSeen);
            if (sameFile && !(force && _lastRejected))
            {
                return ConfigReloadOutcome.Unchanged;
            }

            _lastSeen = hash;
            var outcome = await ApplyAsync(path, cancellationToken);
            _lastRejected = outcome == ConfigReloadOutcome.Rejected;
            if (outcome != ConfigReloadOutcome.Unchanged)
            {
                Interlocked.Increment(ref outcome == ConfigReloadOutcome.Applied ? ref _applied : ref _rejected);
            }

            Reloaded?.Invoke(outcome);
            return outcome;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<ConfigReloadOutcome> ApplyAsync(string path, CancellationToken cancellationToken)
    {
        PluginConfig next;
        try
        {
            next = ConfigLoader.LoadFile(path, Current.ListenOverride);
        }
        catch (ConfigException e)
        {
            LogRejected(_logger, path, "configuration error: " + e.Message);
            return ConfigReloadOutcome.Rejected;
        }

        if (RestartRequired(Current, next) is { } field)
        {
            LogRejected(_logger, path, $"{field} changed, which needs a restart (only rootKeys and rotation apply live)");
            return ConfigReloadOutcome.Rejected;
        }

        if (next.StableProbes == Current.StableProbes && SameRootKeys(Current, next))
        {
            Current = next; // comments or layout changed: nothing to apply
            return ConfigReloadOutcome.Unchanged;
        }

        RootKeyRing? ring;
        try
        {
            ring = await _keys.UpdateAsync((current, token) => BuildCheckedAsync(next, current, token), cancellationToken);
        }
        catch (Exception e) when (e is KmsPluginException or ConfigException or ArgumentException)
        {
            LogRejected(_logger, path, e.Message);
            return ConfigReloadOutcome.Rejected;
        }

        Current = next;
        _follower.StableProbes = next.StableProbes;
        var active = ring ?? _keys.Current;
        LogApplied(_logger, path, active.Primary.Name, KeyIdHash.Of(active.PrimaryKeyId), active.AdditionalWraps.Count,
            active.Entries.Count(e => e.Role == RootKeyRole.DecryptOnly));
        return ConfigReloadOutcome.Applied;
    }

    /// <summary>
    /// Opens what is new (off the request threads: a provider may call its backend), and — when the primary changes —
    /// proves the new primary can wrap and unwrap before anything is swapped or a key_id recorded: a primary without
    /// permission to wrap would otherwise fail every Encrypt after the reload.
    /// </summary>
    private async Task<RootKeyRing?> BuildCheckedAsync(PluginConfig next, RootKeyRing current, CancellationToken cancellationToken)
    {
        var entries = await Task.Run(() => _builder.Open(next.RootKeys, current), cancellationToken);
        try
        {
            if (!ReferenceEquals(entries[0].Key, current.Primary))
            {
                await RootKeyCanary.CheckAsync(entries[0].Key, next.RootKeyTimeout, cancellationToken);
            }

            return _builder.AssignKeyId(entries);
        }
        catch
        {
            var kept = current.Keys.ToHashSet(ReferenceEqualityComparer.Instance);
            foreach (var entry in entries.Where(e => !kept.Contains(e.Key)))
            {
                entry.Key.Dispose();
            }

            throw;
        }
    }

    /// <summary>The first setting that differs and cannot change live, or null.</summary>
    internal static string? RestartRequired(PluginConfig current, PluginConfig next)
    {
        var checks = new (string Field, bool Same)[]
        {
            ("listen", current.SocketPath == next.SocketPath),
            ("socketGroup", current.SocketGroup == next.SocketGroup),
            ("statusVersion", current.StatusVersion == next.StatusVersion),
            ("kek", current.Kek == next.Kek),
            ("envelope", current.EnvelopeMode == next.EnvelopeMode),
            ("health", current.Health == next.Health),
            ("logging", current.Logging == next.Logging),
            ("rootKeyTimeout", current.RootKeyTimeout == next.RootKeyTimeout),
            ("shutdownTimeout", current.ShutdownTimeout == next.ShutdownTimeout),
            ("stateDirectory", current.StateDirectory == next.StateDirectory),
            ("reload", current.Reload == next.Reload),
        };
        if (checks.FirstOrDefault(c => !c.Same) is { Field: { } field })
        {
            return field;
        }

        // Settings added later are records too: any other difference also needs a restart.
        var live = current with { RootKeys = next.RootKeys, StableProbes = next.StableProbes };
        return live == next ? null : "a setting other than rootKeys and rotation";
    }

    private static bool SameRootKeys(PluginConfig current, PluginConfig next) =>
        current.RootKeys.Select(k => (k.Fingerprint, k.Role)).SequenceEqual(next.RootKeys.Select(k => (k.Fingerprint, k.Role)))
        && current.RootKeys.All(k => k.Fingerprint.Length > 0);

    private static byte[]? TryHash(string path)
    {
        try
        {
            return SHA256.HashData(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public void Dispose() => _gate.Dispose();

    [LoggerMessage(EventId = 200, Level = LogLevel.Error, Message = "configuration reload from {Path} rejected, still serving the previous configuration: {Reason}")]
    private static partial void LogRejected(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 201, Level = LogLevel.Warning,
        Message = "configuration reloaded from {Path}: primary root key {RootKey}, key_id {KeyIdHash}, {Additional} additional wrap(s), {DecryptOnly} decrypt-only")]
    private static partial void LogApplied(ILogger logger, string path, string rootKey, string keyIdHash, int additional, int decryptOnly);
}
