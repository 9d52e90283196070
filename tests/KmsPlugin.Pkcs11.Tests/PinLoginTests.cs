using System.Text;
using KmsPlugin.Core.Errors;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Pkcs11.Tests;

/// <summary>
/// PIN handling, on SoftHsmToken.SharedSecondary, which no other test class touches: login state is per token per
/// process, so these tests must be the only ones logging in to it (xunit runs one class's tests one at a time).
/// </summary>
public sealed class PinLoginTests
{
    private static readonly SoftHsmToken Token = SoftHsmToken.SharedSecondary;

    private static string ModulePath => Pkcs11ModuleRegistry.ResolvePath(Token.Library);

    [Fact]
    public async Task Wrong_pin_is_denied_tried_only_once_and_the_token_stays_usable()
    {
        using var temp = new TempDirectory();
        var wrongPin = "wrong-" + Guid.NewGuid().ToString("N");
        var options = TestOptions.For(Token) with { PinFile = TestOptions.WritePinFile(temp, wrongPin) };
        var before = Pkcs11LoginGuard.AttemptCount(ModulePath, Token.TokenLabel);

        var first = Assert.Throws<KmsPluginException>(() => Pkcs11RootKey.Open(options));

        Assert.Equal(KmsErrorKind.RootKeyDenied, first.Kind);
        Assert.Contains("CKR_PIN_INCORRECT", first.Message, StringComparison.Ordinal);
        Assert.Contains($"token '{Token.TokenLabel}'", first.Message, StringComparison.Ordinal);
        Assert.Contains(options.PinFile, first.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(wrongPin, first.Message, StringComparison.Ordinal);
        Assert.Equal(before + 1, Pkcs11LoginGuard.AttemptCount(ModulePath, Token.TokenLabel));

        // Asked again (a config reload, a new instance): the same clear error, fast, and no second C_Login.
        var second = Assert.Throws<KmsPluginException>(() => Pkcs11RootKey.Open(options));
        Assert.Equal(KmsErrorKind.RootKeyDenied, second.Kind);
        Assert.Equal(first.Message, second.Message);

        // The same wrong PIN from another file is recognised too.
        var copy = Assert.Throws<KmsPluginException>(
            () => Pkcs11RootKey.Open(options with { PinFile = TestOptions.WritePinFile(temp, wrongPin + "\n") }));
        Assert.Equal(KmsErrorKind.RootKeyDenied, copy.Kind);
        Assert.Equal(before + 1, Pkcs11LoginGuard.AttemptCount(ModulePath, Token.TokenLabel));

        // Not locked: a fresh instance with the right PIN logs in and works.
        using var good = Pkcs11RootKey.Open(TestOptions.For(Token));
        var blob = await good.WrapAsync(TestOptions.Kek(), ReadOnlyMemory<byte>.Empty, CancellationToken.None);
        using var unwrapped = await good.UnwrapAsync(blob, ReadOnlyMemory<byte>.Empty, CancellationToken.None);
        Assert.Equal(TestOptions.Kek(), unwrapped.Span.ToArray());
        Assert.Equal(before + 2, Pkcs11LoginGuard.AttemptCount(ModulePath, Token.TokenLabel));
    }

    [Fact]
    public async Task When_the_login_is_lost_and_the_pin_is_then_rejected_the_instance_never_tries_again()
    {
        using var temp = new TempDirectory();
        var correctPin = File.ReadAllText(Token.PinFile);
        var pinFile = TestOptions.WritePinFile(temp, correctPin);
        using var rootKey = Pkcs11RootKey.Open(TestOptions.For(Token) with { PinFile = pinFile, SessionPoolSize = 1 });
        var blob = await rootKey.WrapAsync(TestOptions.Kek(), ReadOnlyMemory<byte>.Empty, CancellationToken.None);

        // The PIN file now holds a wrong PIN, and the token "goes away": C_CloseAllSessions ends every session of
        // this process on it, and with them the login (as pulling and re-inserting a token would).
        await File.WriteAllTextAsync(pinFile, "wrong-" + Guid.NewGuid().ToString("N"));
        CloseAllSessionsOf(Token);
        var before = Pkcs11LoginGuard.AttemptCount(ModulePath, Token.TokenLabel);

        // The pooled session is dead: unavailable (retryable), and dropped from the pool.
        var dead = await Assert.ThrowsAsync<KmsPluginException>(
            () => rootKey.WrapAsync(TestOptions.Kek(), ReadOnlyMemory<byte>.Empty, CancellationToken.None));
        Assert.Equal(KmsErrorKind.RootKeyUnavailable, dead.Kind);

        // A fresh session is not logged in, so the instance logs in again with the file's PIN, which is rejected.
        var denied = await Assert.ThrowsAsync<KmsPluginException>(
            () => rootKey.WrapAsync(TestOptions.Kek(), ReadOnlyMemory<byte>.Empty, CancellationToken.None));
        Assert.Equal(KmsErrorKind.RootKeyDenied, denied.Kind);
        Assert.Contains("CKR_PIN_INCORRECT", denied.Message, StringComparison.Ordinal);
        Assert.Equal(before + 1, Pkcs11LoginGuard.AttemptCount(ModulePath, Token.TokenLabel));

        // Even with the right PIN back in the file this instance stays refused: same message, no C_Login.
        await File.WriteAllTextAsync(pinFile, correctPin);
        for (var i = 0; i < 3; i++)
        {
            var again = await Assert.ThrowsAsync<KmsPluginException>(
                () => rootKey.UnwrapAsync(blob, ReadOnlyMemory<byte>.Empty, CancellationToken.None));
            Assert.Equal(KmsErrorKind.RootKeyDenied, again.Kind);
            Assert.Equal(denied.Message, again.Message);
        }

        Assert.Equal(before + 1, Pkcs11LoginGuard.AttemptCount(ModulePath, Token.TokenLabel));

        // The token is not locked: a new instance logs in and reads the old blob.
        using var fresh = Pkcs11RootKey.Open(TestOptions.For(Token));
        using var unwrapped = await fresh.UnwrapAsync(blob, ReadOnlyMemory<byte>.Empty, CancellationToken.None);
        Assert.Equal(TestOptions.Kek(), unwrapped.Span.ToArray());
    }

    [Fact]
    public async Task A_different_pin_while_the_token_is_logged_in_is_refused_without_trying_it()
    {
        using var temp = new TempDirectory();
        using var good = Pkcs11RootKey.Open(TestOptions.For(Token));
        var before = Pkcs11LoginGuard.AttemptCount(ModulePath, Token.TokenLabel);
        var otherPin = "other-" + Guid.NewGuid().ToString("N");

        var error = Assert.Throws<KmsPluginException>(
            () => Pkcs11RootKey.Open(TestOptions.For(Token, "other") with { PinFile = TestOptions.WritePinFile(temp, otherPin) }));

        Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
        Assert.Contains("different PIN", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(otherPin, error.Message, StringComparison.Ordinal);
        Assert.Equal(before, Pkcs11LoginGuard.AttemptCount(ModulePath, Token.TokenLabel));

        // The logged-in instance is unaffected.
        var blob = await good.WrapAsync(TestOptions.Kek(), ReadOnlyMemory<byte>.Empty, CancellationToken.None);
        Assert.NotEmpty(blob);
    }

    [Fact]
    public void A_second_instance_with_the_same_pin_does_not_log_in_again()
    {
        using var first = Pkcs11RootKey.Open(TestOptions.For(Token));
        var before = Pkcs11LoginGuard.AttemptCount(ModulePath, Token.TokenLabel);

        using var second = Pkcs11RootKey.Open(TestOptions.For(Token, "second"));

        Assert.Equal(before, Pkcs11LoginGuard.AttemptCount(ModulePath, Token.TokenLabel));
    }

    [Fact]
    public async Task The_same_key_label_on_another_token_gives_a_different_key_id()
    {
        using var primary = Pkcs11RootKey.Open(TestOptions.For(SoftHsmToken.Shared));
        using var secondary = Pkcs11RootKey.Open(TestOptions.For(Token));
        Assert.Equal(SoftHsmToken.Shared.KeyLabel, Token.KeyLabel);

        Assert.NotEqual(primary.KeyId, secondary.KeyId);
        var aad = Encoding.UTF8.GetBytes("aad");
        var blob = await primary.WrapAsync(TestOptions.Kek(), aad, CancellationToken.None);
        var error = await Assert.ThrowsAsync<KmsPluginException>(() => secondary.UnwrapAsync(blob, aad, CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, error.Kind);
    }

    private static void CloseAllSessionsOf(SoftHsmToken token)
    {
        var module = Pkcs11ModuleRegistry.Acquire(token.Library, "test");
        try
        {
            var slot = Pkcs11Token.FindSlot(module, token.TokenLabel, "test");
            slot.CloseAllSessions();
        }
        finally
        {
            Pkcs11ModuleRegistry.Release(module);
        }
    }
}
