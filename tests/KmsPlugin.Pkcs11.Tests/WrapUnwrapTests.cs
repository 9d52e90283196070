using System.Text;
using KmsPlugin.Core.Errors;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Pkcs11.Tests;

/// <summary>Wrap/unwrap against the shared SoftHSM2 token: the provider's hot path and its failure modes.</summary>
public sealed class WrapUnwrapTests : IDisposable
{
    private static readonly byte[] Aad = Encoding.UTF8.GetBytes("kek-ref:1|key_id:pkcs11-x");
    private readonly Pkcs11RootKey _rootKey = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared));

    public void Dispose() => _rootKey.Dispose();

    [Fact]
    public async Task Wrap_then_unwrap_returns_the_original_kek()
    {
        var kek = TestOptions.Kek();

        var blob = await _rootKey.WrapAsync(kek, Aad, CancellationToken.None);
        using var unwrapped = await _rootKey.UnwrapAsync(blob, Aad, CancellationToken.None);

        Assert.Equal(kek, unwrapped.Span.ToArray());
    }

    [Fact]
    public async Task Round_trip_works_with_empty_associated_data()
    {
        var kek = TestOptions.Kek(7);

        var blob = await _rootKey.WrapAsync(kek, ReadOnlyMemory<byte>.Empty, CancellationToken.None);
        using var unwrapped = await _rootKey.UnwrapAsync(blob, ReadOnlyMemory<byte>.Empty, CancellationToken.None);

        Assert.Equal(kek, unwrapped.Span.ToArray());
    }

    [Fact]
    public async Task Blob_is_format_byte_then_iv_from_the_random_source_then_ciphertext_and_tag()
    {
        var random = new CountingRandomSource();
        using var rootKey = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared), random);
        var kek = TestOptions.Kek();

        var blob = await rootKey.WrapAsync(kek, Aad, CancellationToken.None);

        Assert.Equal(1 + 12 + kek.Length + 16, blob.Length);
        Assert.Equal(0x01, blob[0]);
        var iv = Assert.Single(random.Issued);
        Assert.Equal(12, iv.Length);
        Assert.Equal(iv, blob[1..13]);
        Assert.NotEqual(kek, blob[13..(13 + kek.Length)]);
    }

    [Fact]
    public async Task Wrapping_the_same_kek_twice_gives_different_blobs()
    {
        var kek = TestOptions.Kek();

        var first = await _rootKey.WrapAsync(kek, Aad, CancellationToken.None);
        var second = await _rootKey.WrapAsync(kek, Aad, CancellationToken.None);

        Assert.NotEqual(first, second);
    }

    [Fact]
    public async Task Unwrap_with_different_associated_data_fails_as_corruption()
    {
        var blob = await _rootKey.WrapAsync(TestOptions.Kek(), Aad, CancellationToken.None);

        var error = await Assert.ThrowsAsync<KmsPluginException>(
            () => _rootKey.UnwrapAsync(blob, Encoding.UTF8.GetBytes("kek-ref:2|key_id:pkcs11-x"), CancellationToken.None));

        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
        Assert.Contains("failed authentication", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1)] // first IV byte
    [InlineData(12)] // last IV byte
    [InlineData(13)] // first ciphertext byte
    [InlineData(44)] // last ciphertext byte (1 + 12 + 32 - 1)
    [InlineData(45)] // first tag byte
    [InlineData(60)] // last tag byte
    public async Task Unwrap_of_a_tampered_blob_fails_as_corruption(int position)
    {
        var blob = await _rootKey.WrapAsync(TestOptions.Kek(), Aad, CancellationToken.None);
        Assert.Equal(61, blob.Length);
        blob[position] ^= 0x01;

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => _rootKey.UnwrapAsync(blob, Aad, CancellationToken.None));

        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
    }

    [Fact]
    public async Task Unwrap_of_a_blob_with_an_unknown_format_byte_fails_as_corruption()
    {
        var blob = await _rootKey.WrapAsync(TestOptions.Kek(), Aad, CancellationToken.None);
        blob[0] = 0x02;

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => _rootKey.UnwrapAsync(blob, Aad, CancellationToken.None));

        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(29)] // header + tag, no ciphertext
    public async Task Unwrap_of_a_truncated_blob_fails_as_corruption_without_calling_the_hsm(int length)
    {
        var blob = await _rootKey.WrapAsync(TestOptions.Kek(), Aad, CancellationToken.None);
        var before = _rootKey.HsmOperationCount;

        var error = await Assert.ThrowsAsync<KmsPluginException>(() => _rootKey.UnwrapAsync(blob.AsMemory(0, length), Aad, CancellationToken.None));

        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
        Assert.Equal(before, _rootKey.HsmOperationCount);
    }

    [Fact]
    public async Task A_failed_authentication_leaves_the_key_usable()
    {
        using var rootKey = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { SessionPoolSize = 1 });
        var kek = TestOptions.Kek();
        var blob = await rootKey.WrapAsync(kek, Aad, CancellationToken.None);
        var tampered = (byte[])blob.Clone();
        tampered[20] ^= 0xff;

        for (var i = 0; i < 3; i++)
        {
            await Assert.ThrowsAsync<KmsPluginException>(() => rootKey.UnwrapAsync(tampered, Aad, CancellationToken.None));
        }

        using var unwrapped = await rootKey.UnwrapAsync(blob, Aad, CancellationToken.None);
        Assert.Equal(kek, unwrapped.Span.ToArray());
    }

    [Fact]
    public async Task Wrap_with_an_already_cancelled_token_throws_before_touching_the_hsm()
    {
        var before = _rootKey.HsmOperationCount;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => _rootKey.WrapAsync(TestOptions.Kek(), Aad, new CancellationToken(canceled: true)));

        Assert.Equal(before, _rootKey.HsmOperationCount);
    }

    [Fact]
    public async Task Unwrap_with_an_already_cancelled_token_throws_before_touching_the_hsm()
    {
        var blob = await _rootKey.WrapAsync(TestOptions.Kek(), Aad, CancellationToken.None);
        var before = _rootKey.HsmOperationCount;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => _rootKey.UnwrapAsync(blob, Aad, new CancellationToken(canceled: true)));

        Assert.Equal(before, _rootKey.HsmOperationCount);
    }

    [Fact]
    public async Task Calls_after_dispose_throw_object_disposed()
    {
        var rootKey = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared));
        var blob = await rootKey.WrapAsync(TestOptions.Kek(), Aad, CancellationToken.None);
        rootKey.Dispose();
        rootKey.Dispose(); // idempotent

        await Assert.ThrowsAsync<ObjectDisposedException>(() => rootKey.WrapAsync(TestOptions.Kek(), Aad, CancellationToken.None));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => rootKey.UnwrapAsync(blob, Aad, CancellationToken.None));
    }

    [Fact]
    public void Provider_and_name_come_from_the_options()
    {
        Assert.Equal("pkcs11", _rootKey.Provider);
        Assert.Equal("hsm", _rootKey.Name);
    }
}
