using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Hosting;

/// <summary>
/// Follows root keys configured without a pinned version (Azure versionless key, GCP primary version, Vault/OpenBao
/// latest version): after each health probe it reads each such key's current remote version, and adopts a new one
/// only once it has been seen on <see cref="StableProbes"/> consecutive probes — a version that appears and
/// disappears (a rotation rolled back, replicas disagreeing) is never adopted, and a version the plugin has moved
/// away from is never adopted again, so the key_id never flip-flops (issue 4).
/// </summary>
public sealed partial class RootKeyVersionFollower(ActiveRootKeys keys, RootKeyRingBuilder builder, TimeSpan timeout, ILogger<RootKeyVersionFollower> logger)
    : IDisposable
{
    private readonly SemaphoreSlim _round = new(1, 1);
    private readonly Dictionary<string, (string Version, int Seen)> _candidates = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _leftBehind = new(StringComparer.Ordinal);

    private long _rounds;

    /// <summary>Observation rounds finished (the first runs right after the first probe); lets tests start from a known point.</summary>
    public long Rounds => Interlocked.Read(ref _rounds);

    /// <summary><c>rotation.stableProbes</c>; a reload may change it.</summary>
    public int StableProbes { get; set; } = 3;

    /// <summary>One observation round (called after each probe; rounds never overlap).</summary>
    public async Task ObserveAsync(CancellationToken cancellationToken)
    {
        await _round.WaitAsync(cancellationToken);
        try
        {
            await ObserveEachAsync(cancellationToken);
            Interlocked.Increment(ref _rounds);
        }
        finally
        {
            _round.Release();
        }
    }

    public void Dispose() => _round.Dispose();

    private async Task ObserveEachAsync(CancellationToken cancellationToken)
    {
        foreach (var entry in keys.Current.Entries)
        {
            if (entry.Versioned is not { FollowsLatestVersion: true } versioned)
            {
                continue;
            }

            var name = entry.Key.Name;
            string latest;
            try
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(timeout);
                latest = await versioned.ReadLatestVersionAsync(deadline.Token);
            }
            catch (Exception e) when (e is KmsPluginException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                LogReadFailed(logger, name, e is KmsPluginException k ? k.Message : "timed out");
                continue; // an unreadable version is neither a confirmation nor a contradiction
            }

            if (latest == versioned.CurrentVersion)
            {
                _candidates.Remove(name);
                continue;
            }

            if (_leftBehind.TryGetValue(name, out var left) && left.Contains(latest))
            {
                LogWentBack(logger, name, latest);
                _candidates.Remove(name);
                continue;
            }

            var seen = _candidates.TryGetValue(name, out var candidate) && candidate.Version == latest ? candidate.Seen + 1 : 1;
            _candidates[name] = (latest, seen);
            if (seen < StableProbes)
            {
                LogCandidate(logger, name, latest, seen, StableProbes);
                continue;
            }

            await AdoptAsync(name, versioned, latest, cancellationToken);
        }
    }

    private async Task AdoptAsync(string name, IVersionedRootKey versioned, string latest, CancellationToken cancellationToken)
    {
        _candidates.Remove(name);
        var previousVersion = versioned.CurrentVersion;
        try
        {
            var ring = await keys.UpdateAsync((ring, _) => Task.FromResult(builder.WithVersion(ring, name, versioned, latest)), cancellationToken);
            if (ring is null)
            {
                return; // the entry was reloaded or replaced meanwhile
            }

            if (!_leftBehind.TryGetValue(name, out var left))
            {
                _leftBehind[name] = left = new HashSet<string>(StringComparer.Ordinal);
            }

            left.Add(previousVersion);
            LogAdopted(logger, name, previousVersion, latest, KeyIdHash.Of(ring.PrimaryKeyId));
        }
        catch (Exception e) when (e is KmsPluginException or ArgumentException)
        {
            LogAdoptFailed(logger, name, latest, e.Message);
        }
    }

    [LoggerMessage(EventId = 300, Level = LogLevel.Debug, Message = "root key {RootKey}: could not read its current remote version ({Reason})")]
    private static partial void LogReadFailed(ILogger logger, string rootKey, string reason);

    [LoggerMessage(EventId = 301, Level = LogLevel.Information, Message = "root key {RootKey}: remote version {Version} seen on {Seen} of {Needed} consecutive probes")]
    private static partial void LogCandidate(ILogger logger, string rootKey, string version, int seen, int needed);

    [LoggerMessage(EventId = 302, Level = LogLevel.Warning, Message = "root key {RootKey}: now following remote version {Version} (was {Previous}); key_id is now {KeyIdHash}")]
    private static partial void LogAdopted(ILogger logger, string rootKey, string previous, string version, string keyIdHash);

    [LoggerMessage(EventId = 303, Level = LogLevel.Warning, Message = "root key {RootKey}: the remote reports version {Version} again, which this plugin already moved away from; not going back (restart or pin keyVersion to choose it)")]
    private static partial void LogWentBack(ILogger logger, string rootKey, string version);

    [LoggerMessage(EventId = 304, Level = LogLevel.Error, Message = "root key {RootKey}: could not move to remote version {Version}: {Reason}")]
    private static partial void LogAdoptFailed(ILogger logger, string rootKey, string version, string reason);
}
