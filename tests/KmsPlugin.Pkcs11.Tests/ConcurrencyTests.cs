using System.Text;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Pkcs11.Tests;

public sealed class ConcurrencyTests
{
    [Fact]
    public async Task One_hundred_concurrent_wraps_and_unwraps_all_round_trip()
    {
        using var rootKey = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { SessionPoolSize = 4 });

        var results = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => Task.Run(async () =>
        {
            var kek = TestOptions.Kek((byte)i);
            var aad = Encoding.UTF8.GetBytes($"kek-{i}");
            var blob = await rootKey.WrapAsync(kek, aad, CancellationToken.None);
            using var unwrapped = await rootKey.UnwrapAsync(blob, aad, CancellationToken.None);
            return (kek, plain: unwrapped.Span.ToArray(), blob);
        })));

        Assert.All(results, r => Assert.Equal(r.kek, r.plain));
        Assert.Equal(100, results.Select(r => Convert.ToHexString(r.blob)).Distinct().Count());
        Assert.Equal(200, rootKey.HsmOperationCount);
    }

    [Fact]
    public async Task Concurrent_calls_on_several_instances_sharing_the_module_all_succeed()
    {
        var options = TestOptions.For(SoftHsmToken.Shared);
        var keys = Enumerable.Range(0, 4).Select(i => Pkcs11RootKey.Open(options with { Name = $"hsm-{i}", SessionPoolSize = 2 })).ToList();
        try
        {
            await Task.WhenAll(Enumerable.Range(0, 100).Select(i => Task.Run(async () =>
            {
                var kek = TestOptions.Kek((byte)i);
                var blob = await keys[i % 4].WrapAsync(kek, ReadOnlyMemory<byte>.Empty, CancellationToken.None);
                using var unwrapped = await keys[(i + 1) % 4].UnwrapAsync(blob, ReadOnlyMemory<byte>.Empty, CancellationToken.None);
                Assert.Equal(kek, unwrapped.Span.ToArray());
            })));
        }
        finally
        {
            keys.ForEach(k => k.Dispose());
        }
    }
}
