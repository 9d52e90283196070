using System.Security.Cryptography;
using Xunit;

namespace KmsPlugin.TestSupport;

/// <summary>
/// The base of the versioned-key contracts: a fresh <typeparamref name="TBackend"/> per test, started before it
/// (the key at <see cref="FirstVersion"/>) and disposed after it.
/// </summary>
public abstract class VersionedKeyBackendTest<TBackend> : IAsyncLifetime
    where TBackend : IVersionedKeyBackend, new()
{
    /// <summary>Associated data shaped like the plugin's (it names a key_id); any bytes do for the backend.</summary>
    protected static readonly byte[] Aad = "k8s-kms-plugin/wrapped-kek/v1\ncontract-0123"u8.ToArray();

    protected TBackend Backend { get; } = new();

    /// <summary>The key's version when the test starts (what <see cref="IVersionedKeyBackend.StartAsync"/> returned).</summary>
    protected string FirstVersion { get; private set; } = "";

    public virtual async Task InitializeAsync() => FirstVersion = await Backend.StartAsync();

    public virtual async Task DisposeAsync() => await Backend.DisposeAsync();

    protected static byte[] NewKek() => RandomNumberGenerator.GetBytes(32);
}
