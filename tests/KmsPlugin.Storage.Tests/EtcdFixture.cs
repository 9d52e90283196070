using KmsPlugin.TestSupport;

namespace KmsPlugin.Storage.Tests;

/// <summary>One real etcd per test class; tests keep to their own key prefix.</summary>
public sealed class EtcdFixture : IAsyncLifetime
{
    private EtcdServer? _etcd;

    public EtcdServer Etcd => _etcd!;

    public async Task InitializeAsync() => _etcd = await EtcdServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (_etcd is not null)
        {
            await _etcd.DisposeAsync();
        }
    }
}
