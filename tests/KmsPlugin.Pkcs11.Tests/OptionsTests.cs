using KmsPlugin.Core.Errors;

namespace KmsPlugin.Pkcs11.Tests;

public sealed class OptionsTests
{
    private static readonly Pkcs11RootKeyOptions Valid = new()
    {
        Name = "hsm",
        Library = "/usr/lib/softhsm/libsofthsm2.so",
        TokenLabel = "kms",
        KeyLabel = "kek1",
        PinFile = "/etc/kms-plugin/hsm.pin",
    };

    [Fact]
    public void Valid_options_pass_and_default_to_four_sessions()
    {
        Valid.Validate();
        Assert.Equal(4, Valid.SessionPoolSize);
        (Valid with { KeyLabel = null, KeyId = "01" }).Validate();
        (Valid with { KeyId = "0xA1b2" }).Validate();
    }

    [Theory]
    [InlineData("library", "")]
    [InlineData("library", "libsofthsm2.so")]
    [InlineData("library", "relative/libsofthsm2.so")]
    public void A_bad_library_is_refused_naming_the_option(string option, string library) =>
        AssertRefused(Valid with { Library = library }, option);

    [Theory]
    [InlineData("")]
    [InlineData("a-token-label-that-is-longer-than-32-bytes")]
    [InlineData("trailing ")]
    public void A_bad_token_label_is_refused_naming_the_option(string label) =>
        AssertRefused(Valid with { TokenLabel = label }, "tokenLabel");

    [Fact]
    public void Neither_key_label_nor_key_id_is_refused() =>
        AssertRefused(Valid with { KeyLabel = null, KeyId = null }, "keyLabel or keyId");

    [Theory]
    [InlineData("1")]
    [InlineData("0g")]
    [InlineData("0x")]
    [InlineData("01:02")]
    public void A_key_id_that_is_not_hex_bytes_is_refused(string keyId) =>
        AssertRefused(Valid with { KeyId = keyId }, "keyId");

    [Fact]
    public void A_missing_pin_file_option_is_refused() =>
        AssertRefused(Valid with { PinFile = " " }, "pinFile");

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(257)]
    public void A_session_pool_size_out_of_range_is_refused(int size) =>
        AssertRefused(Valid with { SessionPoolSize = size }, "sessionPoolSize");

    private static void AssertRefused(Pkcs11RootKeyOptions options, string option)
    {
        var error = Assert.Throws<KmsPluginException>(options.Validate);
        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains(option, error.Message, StringComparison.Ordinal);
        Assert.StartsWith($"pkcs11 root key '{options.Name}': option ", error.Message, StringComparison.Ordinal);

        // Open validates first: nothing is loaded for a bad configuration.
        var fromOpen = Assert.Throws<KmsPluginException>(() => Pkcs11RootKey.Open(options));
        Assert.Equal(error.Message, fromOpen.Message);
    }
}
