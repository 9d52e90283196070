using KmsPlugin.Core.Security;

namespace KmsPlugin.Tests.Unit;

public sealed class ReferenceCountTests
{
    [Fact]
    public void Release_reports_the_last_holder_and_nothing_can_be_acquired_after_it()
    {
        var count = new ReferenceCount();
        Assert.True(count.TryAcquire());
        Assert.False(count.Release());
        Assert.True(count.Release());
        Assert.False(count.TryAcquire());
    }

    [Fact]
    public async Task Concurrent_acquire_and_release_end_at_exactly_one_last_release()
    {
        var count = new ReferenceCount();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                Assert.True(count.TryAcquire());
                Assert.False(count.Release());
            }
        })));
        Assert.True(count.Release());
    }
}
