using KmsPlugin.Core.Errors;
using KmsPlugin.TestSupport;
using Net.Pkcs11Interop.HighLevelAPI;

namespace KmsPlugin.Pkcs11.Tests;

/// <summary>
/// Faults on a live token: deleted while a root key has it open, its sessions killed, its key regenerated under the
/// same label. Each test breaks a token of its own (<see cref="SoftHsmToken.TakeExpendable"/>), so no other test
/// shares its sessions or its C_Login count.
/// </summary>
public sealed class TokenRemovalTests
{
    private static readonly ReadOnlyMemory<byte> NoAad = ReadOnlyMemory<byte>.Empty;

    [Fact]
    public async Task Deleting_the_token_fails_every_call_unavailable_naming_the_token_and_never_logs_in()
    {
        var token = SoftHsmToken.TakeExpendable();
        using var rootKey = Pkcs11RootKey.Open(TestOptions.For(token) with { SessionPoolSize = 2 });
        var blob = await rootKey.WrapAsync(TestOptions.Kek(), NoAad, CancellationToken.None);
        var logins = LoginAttempts(token);

        token.DeleteToken(); // softhsm2-util --delete-token, while this process has the module loaded

        for (var i = 0; i < 10; i++)
        {
            var wrap = await Assert.ThrowsAsync<KmsPluginException>(() => rootKey.WrapAsync(TestOptions.Kek(), NoAad, CancellationToken.None));
            var unwrap = await Assert.ThrowsAsync<KmsPluginException>(() => rootKey.UnwrapAsync(blob, NoAad, CancellationToken.None));
            foreach (var error in new[] { wrap, unwrap })
            {
                // Unavailable (the apiserver retries), never Corruption: the stored data is fine, the token is not.
                Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
                Assert.Contains($"token '{token.TokenLabel}' no longer answers", error.Message, StringComparison.Ordinal);
                Assert.Contains("restart the plugin", error.Message, StringComparison.Ordinal);
            }
        }

        // SoftHSM2 keeps the sessions "logged in" after a delete: nothing here may call C_Login.
        Assert.Equal(logins, LoginAttempts(token));
    }

    [Fact]
    public async Task A_deleted_token_whose_sessions_died_gets_one_login_attempt_then_none_within_the_backoff()
    {
        var token = SoftHsmToken.TakeExpendable();
        using var rootKey = Pkcs11RootKey.Open(TestOptions.For(token) with { SessionPoolSize = 2 });
        _ = await rootKey.WrapAsync(TestOptions.Kek(), NoAad, CancellationToken.None);

        // A pulled token takes its sessions (and so the login) with it: delete it, then close every session.
        var slot = SlotOf(token);
        token.DeleteToken();
        slot.CloseAllSessions();
        var logins = LoginAttempts(token);

        var errors = new List<KmsPluginException>();
        for (var i = 0; i < 20; i++)
        {
            errors.Add(await Assert.ThrowsAsync<KmsPluginException>(() => rootKey.WrapAsync(TestOptions.Kek(), NoAad, CancellationToken.None)));
        }

        Assert.All(errors, e => Assert.Equal(KmsErrorKind.RootKeyUnavailable, e.Kind));
        Assert.All(errors, e => Assert.Contains($"token '{token.TokenLabel}'", e.Message, StringComparison.Ordinal));

        // Twenty calls, one C_Login (SoftHSM2 answers CKR_GENERAL_ERROR for the deleted token); the rest are held
        // back and say so. The pooled dead session failed one call and took the idle ones with it.
        Assert.Equal(logins + 1, LoginAttempts(token));
        Assert.Contains(errors, e => e.Message.Contains("C_Login failed: CKR_GENERAL_ERROR", StringComparison.Ordinal));
        Assert.Contains("not tried again before", errors[^1].Message, StringComparison.Ordinal);
        Assert.Equal(0, rootKey.Sessions.IdleCount);
    }

    [Fact]
    public async Task When_every_session_dies_one_call_fails_the_idle_sessions_go_with_it_and_the_next_call_logs_in_once()
    {
        var token = SoftHsmToken.TakeExpendable();
        using var rootKey = Pkcs11RootKey.Open(TestOptions.For(token) with { SessionPoolSize = 4 });
        var blob = await rootKey.WrapAsync(TestOptions.Kek(), NoAad, CancellationToken.None);
        var rented = Enumerable.Range(0, 4).Select(_ => rootKey.Sessions.Rent()).ToList();
        rented.ForEach(session => rootKey.Sessions.Return(session, broken: false));
        Assert.Equal(4, rootKey.Sessions.IdleCount);

        SlotOf(token).CloseAllSessions(); // as a token pulled and put back, or an HSM failover, would
        var logins = LoginAttempts(token);

        var dead = await Assert.ThrowsAsync<KmsPluginException>(() => rootKey.WrapAsync(TestOptions.Kek(), NoAad, CancellationToken.None));
        Assert.Equal(KmsErrorKind.RootKeyUnavailable, dead.Kind);
        Assert.Contains($"token '{token.TokenLabel}': C_EncryptInit failed: CKR_SESSION_HANDLE_INVALID", dead.Message, StringComparison.Ordinal);
        Assert.Equal(0, rootKey.Sessions.IdleCount); // not three more dead sessions for the next three calls

        using var unwrapped = await rootKey.UnwrapAsync(blob, NoAad, CancellationToken.None);
        Assert.Equal(TestOptions.Kek(), unwrapped.Span.ToArray());
        _ = await rootKey.WrapAsync(TestOptions.Kek(), NoAad, CancellationToken.None);
        Assert.Equal(logins + 1, LoginAttempts(token));
    }

    [Fact]
    public async Task A_key_regenerated_under_the_same_label_is_refused_as_a_different_key_and_never_used()
    {
        var token = SoftHsmToken.TakeExpendable();
        using var rootKey = Pkcs11RootKey.Open(TestOptions.For(token));
        var blob = await rootKey.WrapAsync(TestOptions.Kek(), NoAad, CancellationToken.None);

        token.RegenerateKey(); // delete kek1 and generate a new kek1 with the same CKA_ID

        var wrap = await Assert.ThrowsAsync<KmsPluginException>(() => rootKey.WrapAsync(TestOptions.Kek(), NoAad, CancellationToken.None));
        var unwrap = await Assert.ThrowsAsync<KmsPluginException>(() => rootKey.UnwrapAsync(blob, NoAad, CancellationToken.None));
        foreach (var error in new[] { wrap, unwrap })
        {
            Assert.Equal(KmsErrorKind.RootKeyDenied, error.Kind);
            Assert.Contains($"on token '{token.TokenLabel}' is not the key this plugin opened", error.Message, StringComparison.Ordinal);
        }

        // Asked again, the same answer: the new key is never adopted behind the old key's key_id.
        var again = await Assert.ThrowsAsync<KmsPluginException>(() => rootKey.WrapAsync(TestOptions.Kek(), NoAad, CancellationToken.None));
        Assert.Equal(wrap.Message, again.Message);

        // A restarted plugin opens the new key; the old blob then fails authentication (DataLoss), it never
        // decrypts to something else.
        using var restarted = Pkcs11RootKey.Open(TestOptions.For(token));
        var stale = await Assert.ThrowsAsync<KmsPluginException>(() => restarted.UnwrapAsync(blob, NoAad, CancellationToken.None));
        Assert.Equal(KmsErrorKind.Corruption, stale.Kind);
    }

    private static int LoginAttempts(SoftHsmToken token) =>
        Pkcs11LoginGuard.AttemptCount(Pkcs11ModuleRegistry.ResolvePath(token.Library), token.TokenLabel);

    /// <summary>
    /// The token's slot, found by label while the token is there (after a delete the label no longer answers). The
    /// root key under test keeps the module loaded, so the slot stays usable after the reference taken here is released.
    /// </summary>
    private static ISlot SlotOf(SoftHsmToken token)
    {
        var module = Pkcs11ModuleRegistry.Acquire(token.Library, "test");
        try
        {
            return Pkcs11Token.FindSlot(module, token.TokenLabel, "test");
        }
        finally
        {
            Pkcs11ModuleRegistry.Release(module);
        }
    }
}
