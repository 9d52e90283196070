namespace KmsPlugin.Pkcs11.Tests;

public sealed class WrappedBlobTests
{
    [Fact]
    public void Compose_then_parse_gives_back_iv_and_ciphertext()
    {
        var iv = Enumerable.Range(1, 12).Select(i => (byte)i).ToArray();
        var ciphertext = Enumerable.Range(100, 48).Select(i => (byte)i).ToArray();

        var blob = Pkcs11WrappedBlob.Compose(iv, ciphertext);

        Assert.True(Pkcs11WrappedBlob.TryParse(blob, out var parsedIv, out var parsedCiphertext));
        Assert.Equal(iv, parsedIv.ToArray());
        Assert.Equal(ciphertext, parsedCiphertext.ToArray());
    }

    [Fact]
    public void The_gcm_aad_is_the_format_byte_then_the_associated_data() =>
        Assert.Equal(new byte[] { 0x01, 0xaa, 0xbb }, Pkcs11WrappedBlob.AdditionalData([0xaa, 0xbb]));

    [Fact]
    public void Unknown_formats_and_short_blobs_do_not_parse()
    {
        var blob = Pkcs11WrappedBlob.Compose(new byte[12], new byte[17]);
        Assert.True(Pkcs11WrappedBlob.TryParse(blob, out _, out _));

        blob[0] = 0x00;
        Assert.False(Pkcs11WrappedBlob.TryParse(blob, out _, out _));
        Assert.False(Pkcs11WrappedBlob.TryParse(Pkcs11WrappedBlob.Compose(new byte[12], new byte[16]), out _, out _));
    }
}
