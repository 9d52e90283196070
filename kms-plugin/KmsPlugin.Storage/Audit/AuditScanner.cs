using KmsPlugin.Core.RootKeys;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using KmsPlugin.Storage.Format;

namespace KmsPlugin.Storage.Audit;

/// <summary>
/// The audit: reads every key under the scanned prefixes page by page (never the whole store at once), tells each
/// value's storage format from its prefix, decodes KMS v2 values, and counts. A value that cannot be decoded is
/// counted and listed as a problem; it never stops the scan. Nothing is written to the store.
/// </summary>
public sealed class AuditScanner
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(2);

    private readonly IKeyValueSource _source;
    private readonly AuditOptions _options;
    private readonly IDekSourceDecryptor? _decryptor;
    private readonly TextWriter? _progress;
    private readonly Dictionary<StoredKeyId, KeyIdAudit> _keyIds = [];
    private readonly Dictionary<string, ConfiguredKeyId> _configured;

    /// <param name="source">The store, read only.</param>
    /// <param name="options">What to scan.</param>
    /// <param name="decryptor">The plugin, for <c>--verify</c>; null to only count.</param>
    /// <param name="progress">Where progress lines go (stderr), or null.</param>
    public AuditScanner(IKeyValueSource source, AuditOptions options, IDekSourceDecryptor? decryptor, TextWriter? progress)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        _source = source;
        _options = options;
        _decryptor = decryptor;
        _progress = progress;
        _configured = new Dictionary<string, ConfiguredKeyId>(StringComparer.Ordinal);
        foreach (var key in options.ConfiguredKeyIds)
        {
            _configured.TryAdd(key.KeyId, key);
        }
    }

    public async Task<AuditReport> RunAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var report = new AuditReport { Source = _source.Description, Options = _options, Verified = _decryptor is not null };
        var prefixes = _options.ScanPrefixes();
        long estimate = 0;
        foreach (var prefix in prefixes)
        {
            estimate += await _source.CountAsync(prefix, cancellationToken);
        }

        Progress($"audit: {estimate} keys under {string.Join(", ", prefixes)} (read {_options.PageSize} per page)");
        using var verifier = _decryptor is null ? null : new DekSourceVerifier(_decryptor, _options.VerifySample);
        var lastProgress = clock.Elapsed;
        foreach (var prefix in prefixes)
        {
            await foreach (var page in _source.ReadPagesAsync(prefix, _options.PageSize, cancellationToken))
            {
                foreach (var entry in page)
                {
                    await ExamineAsync(report, entry, verifier, cancellationToken);
                }

                if (clock.Elapsed - lastProgress >= ProgressInterval)
                {
                    lastProgress = clock.Elapsed;
                    var percent = estimate > 0 ? Math.Min(100, report.Scanned * 100 / estimate) : 100;
                    Progress($"audit: {report.Scanned} of {estimate} keys ({percent}%), {prefix}");
                }
            }
        }

        AddConfiguredKeyIdsWithoutData();
        report.KeyIds.AddRange(_keyIds.Values
            .OrderBy(k => k.Role switch { KeyIdRole.Current => 0, KeyIdRole.Old => 1, KeyIdRole.Unknown => 2, _ => 3 })
            .ThenBy(k => k.Provider ?? string.Empty, StringComparer.Ordinal)
            .ThenBy(k => k.KeyId, StringComparer.Ordinal));
        report.Revision = _source.Revision;
        report.SnapshotRestarts = _source.SnapshotRestarts;
        report.Elapsed = clock.Elapsed;
        Progress(string.Create(CultureInfo.InvariantCulture, $"audit: scanned {report.Scanned} keys in {clock.Elapsed.TotalSeconds:0.0} s"));
        return report;
    }

    private async Task ExamineAsync(AuditReport report, StoredKeyValue entry, DekSourceVerifier? verifier, CancellationToken cancellationToken)
    {
        var key = Encoding.UTF8.GetString(entry.Key.Span);
        var resourceName = _options.ResourceOf(key);
        if (!report.Resources.TryGetValue(resourceName, out var resource))
        {
            resource = new ResourceAudit(resourceName);
            report.Resources.Add(resourceName, resource);
        }

        report.Scanned++;
        resource.Total++;
        var value = entry.Value.Span;
        var header = StoredValueHeader.Parse(value);
        resource.ByKind[header.Kind] = resource.ByKind.GetValueOrDefault(header.Kind) + 1;
        resource.ByPrefix[header.Label] = resource.ByPrefix.GetValueOrDefault(header.Label) + 1;

        KmsV2StoredValue? decoded = null;
        if (header.Kind == StoredValueKind.KmsV2)
        {
            if (!KmsV2StoredValue.TryDecode(value, out decoded, out var problem))
            {
                resource.Corrupted++;
                AddProblem(report, key, "corrupted KMS v2 value: " + problem);
            }
        }
        else if (header.Problem is not null)
        {
            if (header.Kind != StoredValueKind.UnrecognizedEncrypted)
            {
                resource.Corrupted++;
            }

            AddProblem(report, key, header.Problem);
        }

        if (_options.RequireKeyId is { } required && (decoded is null || decoded.EncryptedObject.KeyID != required))
        {
            report.NotUnderRequiredKeyId++;
        }

        if (decoded is null)
        {
            return;
        }

        var encryptedObject = decoded.EncryptedObject;
        var storedKeyId = new StoredKeyId(decoded.ProviderName, encryptedObject.KeyID);
        if (!resource.KmsV2ByKeyId.TryGetValue(storedKeyId, out var counts))
        {
            counts = new KeyIdObjectCounts();
            resource.KmsV2ByKeyId.Add(storedKeyId, counts);
        }

        counts.Add(encryptedObject.EncryptedDEKSourceType);
        var keyId = KeyIdFor(storedKeyId, encryptedObject);
        keyId.Counts.Add(encryptedObject.EncryptedDEKSourceType);
        var identity = DekSourceIdentity.Of(encryptedObject);
        keyId.DekSourceIds.Add(identity);

        if (verifier is not null && (_options.VerifyProvider is null || _options.VerifyProvider == decoded.ProviderName))
        {
            keyId.Verify ??= new VerifyCounts();
            if (await verifier.VerifyAsync(identity, encryptedObject, entry.Key, keyId.Verify, cancellationToken) is { } unreadable)
            {
                AddProblem(report, key, "unreadable: " + unreadable);
            }
        }
    }

    private KeyIdAudit KeyIdFor(StoredKeyId storedKeyId, V2.EncryptedObject encryptedObject)
    {
        if (!_keyIds.TryGetValue(storedKeyId, out var audit))
        {
            // A key_id names one root key (version), so the first value seen under it speaks for all of them.
            var (role, rootKey) = RoleOf(storedKeyId.KeyId);
            if (role == KeyIdRole.Unknown && _options.RecognizeRootKey is { } recognize)
            {
                var annotations = encryptedObject.Annotations.ToDictionary(a => a.Key, a => a.Value.Memory, StringComparer.Ordinal);
                if (recognize(storedKeyId.KeyId, encryptedObject.EncryptedDEKSource.Memory, annotations) is { } name)
                {
                    (role, rootKey) = (KeyIdRole.Old, name); // an older version of a configured versioned key: still readable
                }
            }

            audit = new KeyIdAudit(storedKeyId.Provider, storedKeyId.KeyId, role, rootKey);
            _keyIds.Add(storedKeyId, audit);
        }

        return audit;
    }

    private (KeyIdRole Role, string? RootKey) RoleOf(string keyId)
    {
        if (_options.ConfiguredKeyIds.Count == 0)
        {
            return (KeyIdRole.NotChecked, null);
        }

        if (_configured.TryGetValue(keyId, out var configured))
        {
            return (configured.Primary ? KeyIdRole.Current : KeyIdRole.Old, configured.RootKeyName);
        }

        // Another epoch of a configured key (KeyIdEpoch: "<key_id>.e<n>", an earlier period of that key, or the
        // primary's own key_id before its current epoch): readable, but not what new writes use.
        var baseKeyId = KeyIdEpoch.BaseOf(keyId);
        var sameKey = _options.ConfiguredKeyIds.FirstOrDefault(c => KeyIdEpoch.BaseOf(c.KeyId) == baseKeyId);
        return sameKey is null ? (KeyIdRole.Unknown, null) : (KeyIdRole.Old, sameKey.RootKeyName);
    }

    /// <summary>A configured root key with nothing in etcd is the good news of a finished migration: list it with 0.</summary>
    private void AddConfiguredKeyIdsWithoutData()
    {
        foreach (var configured in _options.ConfiguredKeyIds)
        {
            if (!_keyIds.Keys.Any(k => k.KeyId == configured.KeyId))
            {
                _keyIds.Add(new StoredKeyId(string.Empty, configured.KeyId),
                    new KeyIdAudit(null, configured.KeyId, configured.Primary ? KeyIdRole.Current : KeyIdRole.Old, configured.RootKeyName));
            }
        }
    }

    private void AddProblem(AuditReport report, string key, string problem)
    {
        if (report.Problems.Count < _options.MaxProblemsListed)
        {
            report.Problems.Add(new AuditProblem(key, problem));
        }
        else
        {
            report.ProblemsNotListed++;
        }
    }

    private void Progress(string line) => _progress?.WriteLine(line);
}
