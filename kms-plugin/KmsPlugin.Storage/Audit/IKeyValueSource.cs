namespace KmsPlugin.Storage.Audit;

/// <summary>Read-only, paged access to the keys under a prefix (etcd in production: <see cref="EtcdKeyValueSource"/>).</summary>
public interface IKeyValueSource
{
    /// <summary>Where the keys come from, for the report (e.g. the etcd endpoints).</summary>
    string Description { get; }

    /// <summary>The store revision the last page was read at (0 when the store has none).</summary>
    long Revision { get; }

    /// <summary>How often a scan had to move to a newer revision (etcd compacted the one it was reading).</summary>
    int SnapshotRestarts { get; }

    /// <summary>How many keys are under <paramref name="prefix"/> now (for progress; the scan may see a few more or less).</summary>
    Task<long> CountAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>
    /// The keys under <paramref name="prefix"/> in key order, at most <paramref name="pageSize"/> per page, so a large
    /// store is never held in memory at once.
    /// </summary>
    IAsyncEnumerable<IReadOnlyList<StoredKeyValue>> ReadPagesAsync(string prefix, int pageSize, CancellationToken cancellationToken);
}
