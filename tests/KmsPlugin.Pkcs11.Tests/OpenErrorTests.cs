using KmsPlugin.Core.Errors;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Pkcs11.Tests;

/// <summary>Open fails fast with a typed error whose message names the option (and never the PIN).</summary>
public sealed class OpenErrorTests
{
    [Fact]
    public void Missing_token_label_fails_unavailable_naming_the_label()
    {
        var error = Assert.Throws<KmsPluginException>(
            () => Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { TokenLabel = "no-such-token" }));

        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
        Assert.Contains("'no-such-token'", error.Message, StringComparison.Ordinal);
        Assert.Contains("tokenLabel", error.Message, StringComparison.Ordinal);
        Assert.Contains("'kms'", error.Message, StringComparison.Ordinal); // lists the tokens that are there
    }

    [Fact]
    public void Missing_key_label_fails_unavailable_naming_the_label()
    {
        var error = Assert.Throws<KmsPluginException>(
            () => Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { KeyLabel = "no-such-key" }));

        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
        Assert.Contains("'no-such-key'", error.Message, StringComparison.Ordinal);
        Assert.Contains("keyLabel", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Label_and_id_that_name_different_keys_fail_as_missing()
    {
        var error = Assert.Throws<KmsPluginException>(
            () => Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { KeyLabel = "kek1", KeyId = "02" }));

        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
        Assert.Contains("label 'kek1' and CKA_ID 02", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Several_keys_with_the_configured_label_fail_denied_asking_for_key_id()
    {
        var label = "dup-" + Guid.NewGuid().ToString("N")[..8];
        SoftHsmToken.Shared.AddKey(label, "d1");
        SoftHsmToken.Shared.AddKey(label, "d2", allowDuplicateLabel: true);

        var error = Assert.Throws<KmsPluginException>(
            () => Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { KeyLabel = label }));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains($"2 AES secret keys match label '{label}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("keyId", error.Message, StringComparison.Ordinal);

        // ... and adding the CKA_ID picks one.
        using var chosen = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { KeyLabel = label, KeyId = "d2" });
        Assert.StartsWith("pkcs11-", chosen.KeyId, StringComparison.Ordinal);
    }

    [Fact]
    public void Pin_file_readable_by_others_is_refused()
    {
        using var temp = new TempDirectory();
        var pin = File.ReadAllText(SoftHsmToken.Shared.PinFile);
        var pinFile = TestOptions.WritePinFile(temp, pin,
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var error = Assert.Throws<KmsPluginException>(
            () => Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { PinFile = pinFile }));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains(pinFile, error.Message, StringComparison.Ordinal);
        Assert.Contains("chmod 600", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(pin, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pin_file_readable_by_group_is_refused()
    {
        using var temp = new TempDirectory();
        var pinFile = TestOptions.WritePinFile(temp, File.ReadAllText(SoftHsmToken.Shared.PinFile),
            UnixFileMode.UserRead | UnixFileMode.GroupRead);

        var error = Assert.Throws<KmsPluginException>(
            () => Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { PinFile = pinFile }));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
    }

    [Fact]
    public void Pin_file_in_a_directory_others_can_write_is_refused_with_the_chmod_that_fixes_it()
    {
        // Another user could rename the 0600 file away and put a PIN of their choosing in its place.
        using var temp = new TempDirectory();
        var shared = temp.FilePath("shared");
        Directory.CreateDirectory(shared);
        File.SetUnixFileMode(shared, (UnixFileMode)0b111_111_101); // 0775
        var pin = File.ReadAllText(SoftHsmToken.Shared.PinFile);
        var pinFile = Path.Combine(shared, "user.pin");
        File.WriteAllText(pinFile, pin);
        File.SetUnixFileMode(pinFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var error = Assert.Throws<KmsPluginException>(
            () => Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { PinFile = pinFile }));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains($"pinFile {pinFile}", error.Message, StringComparison.Ordinal);
        Assert.Contains($"run: chmod go-w {shared}", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(pin, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_pin_file_fails_unavailable_naming_it()
    {
        var error = Assert.Throws<KmsPluginException>(
            () => Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { PinFile = "/nonexistent/user.pin" }));

        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
        Assert.Contains("pinFile /nonexistent/user.pin", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_pin_file_is_refused()
    {
        using var temp = new TempDirectory();
        var pinFile = TestOptions.WritePinFile(temp, "\n");

        var error = Assert.Throws<KmsPluginException>(
            () => Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { PinFile = pinFile }));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("empty", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    public async Task Pin_file_with_a_trailing_newline_works(string newline)
    {
        using var temp = new TempDirectory();
        var pinFile = TestOptions.WritePinFile(temp, File.ReadAllText(SoftHsmToken.Shared.PinFile) + newline);

        using var rootKey = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { PinFile = pinFile });
        var blob = await rootKey.WrapAsync(TestOptions.Kek(), ReadOnlyMemory<byte>.Empty, CancellationToken.None);

        Assert.NotEmpty(blob);
    }

    [Fact]
    public void Missing_library_fails_unavailable_naming_the_option()
    {
        var error = Assert.Throws<KmsPluginException>(
            () => Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { Library = "/nonexistent/libvendor-pkcs11.so" }));

        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
        Assert.Contains("option library /nonexistent/libvendor-pkcs11.so", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_library_that_is_not_a_pkcs11_module_fails_unavailable()
    {
        var notAModule = new[] { "/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/aarch64-linux-gnu/libz.so.1" }
            .First(File.Exists);

        var error = Assert.Throws<KmsPluginException>(
            () => Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared) with { Library = notAModule }));

        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
        Assert.Contains("as a PKCS#11 module", error.Message, StringComparison.Ordinal);
    }
}
