using System.Security.Cryptography;
using KmsPlugin.Core.Errors;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Vault.Tests;

/// <summary>Vault over TLS: a server certificate from a private CA is trusted only through caFile.</summary>
public sealed class VaultTlsTests : IAsyncLifetime, IDisposable
{
    private readonly TempDirectory _dir = new();
    private FakeVault _vault = null!;

    public async Task InitializeAsync()
    {
        _vault = await FakeVault.StartAsync(tls: LoopbackTls.Shared);
        _vault.CreateKey();
    }

    public async Task DisposeAsync() => await _vault.DisposeAsync();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task With_the_CA_in_caFile_the_key_works_over_TLS()
    {
        var options = VaultTestOptions.Kubernetes(_vault, _dir) with { CaFile = LoopbackTls.Shared.WriteCaFile(_dir) };
        Assert.Equal("https", options.Address.Scheme);

        using var root = await VaultTransitRootKey.OpenAsync(options, CancellationToken.None);
        var kek = RandomNumberGenerator.GetBytes(32);
        using var unwrapped = await root.UnwrapAsync(await root.WrapAsync(kek, VaultTestOptions.Aad(), CancellationToken.None), VaultTestOptions.Aad(),
            CancellationToken.None);

        Assert.Equal(kek, unwrapped.Span.ToArray());
    }

    [Fact]
    public async Task Without_the_CA_the_server_is_not_trusted_and_nothing_is_sent()
    {
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => VaultTransitRootKey.OpenAsync(VaultTestOptions.Kubernetes(_vault, _dir), CancellationToken.None));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("TLS", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, _vault.Calls("login"));
    }
}
