using KmsPlugin.Storage.Audit;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Storage.Tests;

/// <summary>Paged reads of a live etcd: one revision for the whole scan, and a compaction mid-scan is survived.</summary>
public sealed class EtcdSnapshotTests(EtcdFixture fixture) : IClassFixture<EtcdFixture>
{
    [Fact]
    public async Task Keys_written_during_a_scan_are_not_counted_because_every_page_reads_the_first_pages_revision()
    {
        var prefix = await SeedAsync(4);
        using var source = Connect();

        var seen = new List<string>();
        await foreach (var page in source.ReadPagesAsync(prefix, 1, CancellationToken.None))
        {
            Assert.Single(page);
            seen.Add(System.Text.Encoding.UTF8.GetString(page[0].Key.Span));
            if (seen.Count == 1)
            {
                await fixture.Etcd.PutAsync(prefix + "a-added-after-the-first-page", [1]);
                await fixture.Etcd.PutAsync(prefix + "z-added-after-the-first-page", [1]);
            }
        }

        Assert.Equal([prefix + "k0", prefix + "k1", prefix + "k2", prefix + "k3"], seen);
        Assert.Equal(0, source.SnapshotRestarts);
    }

    [Fact]
    public async Task A_compaction_during_a_scan_moves_it_to_the_newest_revision_and_the_report_says_so()
    {
        var prefix = await SeedAsync(3);
        using var source = Connect();

        var seen = 0;
        await foreach (var page in source.ReadPagesAsync(prefix, 1, CancellationToken.None))
        {
            seen += page.Count;
            if (seen == 1)
            {
                await fixture.Etcd.PutAsync(prefix + "k9", [1]);
                await fixture.Etcd.CompactAsync();
            }
        }

        Assert.Equal(4, seen); // k0, then at the new revision k1, k2 and the added k9
        Assert.Equal(1, source.SnapshotRestarts);
    }

    private async Task<string> SeedAsync(int count)
    {
        var prefix = "/snapshot-" + Guid.NewGuid().ToString("N")[..8] + "/";
        for (var i = 0; i < count; i++)
        {
            await fixture.Etcd.PutAsync(prefix + "k" + i, ApiserverStorageWriter.KubernetesObject("k" + i));
        }

        return prefix;
    }

    private EtcdKeyValueSource Connect() =>
        EtcdKeyValueSource.Connect(new EtcdConnectionOptions(EtcdConnectionOptions.ParseEndpoints(fixture.Etcd.Endpoint), null, null, null, TimeSpan.FromSeconds(10)));
}
