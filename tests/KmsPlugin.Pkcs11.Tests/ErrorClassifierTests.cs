using KmsPlugin.Core.Errors;
using Net.Pkcs11Interop.Common;

namespace KmsPlugin.Pkcs11.Tests;

public sealed class ErrorClassifierTests
{
    [Theory]
    [InlineData(CKR.CKR_PIN_INCORRECT)]
    [InlineData(CKR.CKR_PIN_LOCKED)]
    [InlineData(CKR.CKR_PIN_EXPIRED)]
    [InlineData(CKR.CKR_PIN_LEN_RANGE)]
    public void Rejected_pins_are_root_key_denied_and_never_retried(CKR rv)
    {
        Assert.True(Pkcs11ErrorClassifier.IsPinRejected(rv));
        Assert.Equal(KmsErrorKind.RootKeyDenied, Pkcs11ErrorClassifier.Classify(rv));
    }

    [Theory]
    [InlineData(CKR.CKR_TOKEN_NOT_PRESENT)]
    [InlineData(CKR.CKR_DEVICE_REMOVED)]
    [InlineData(CKR.CKR_DEVICE_ERROR)]
    [InlineData(CKR.CKR_SESSION_HANDLE_INVALID)]
    [InlineData(CKR.CKR_SESSION_CLOSED)]
    public void Token_and_session_failures_are_unavailable_and_drop_the_session(CKR rv)
    {
        Assert.True(Pkcs11ErrorClassifier.IsSessionBroken(rv));
        Assert.False(Pkcs11ErrorClassifier.IsPinRejected(rv));
        Assert.Equal(KmsErrorKind.RootKeyUnavailable, Pkcs11ErrorClassifier.Classify(rv));
    }

    [Theory]
    [InlineData(CKR.CKR_GENERAL_ERROR)]
    [InlineData(CKR.CKR_FUNCTION_FAILED)]
    [InlineData(CKR.CKR_MECHANISM_INVALID)]
    [InlineData(CKR.CKR_KEY_HANDLE_INVALID)]
    public void Anything_else_is_unavailable(CKR rv)
    {
        Assert.Equal(KmsErrorKind.RootKeyUnavailable, Pkcs11ErrorClassifier.Classify(rv));
    }

    [Fact]
    public void Stale_key_handles_are_recognised()
    {
        Assert.True(Pkcs11ErrorClassifier.IsKeyHandleStale(CKR.CKR_KEY_HANDLE_INVALID));
        Assert.True(Pkcs11ErrorClassifier.IsKeyHandleStale(CKR.CKR_OBJECT_HANDLE_INVALID));
        Assert.False(Pkcs11ErrorClassifier.IsKeyHandleStale(CKR.CKR_GENERAL_ERROR));
    }

    [Fact]
    public void The_message_names_the_root_key_the_function_and_the_ckr()
    {
        var error = Pkcs11ErrorClassifier.ToException("hsm-a", new Pkcs11Exception("C_Encrypt", CKR.CKR_DEVICE_ERROR));

        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
        Assert.Equal("pkcs11 root key 'hsm-a': C_Encrypt failed: CKR_DEVICE_ERROR", error.Message);
    }

    [Fact]
    public void With_a_token_label_the_message_names_the_token_and_says_what_a_removed_token_means()
    {
        var error = Pkcs11ErrorClassifier.ToException("hsm-a", new Pkcs11Exception("C_OpenSession", CKR.CKR_TOKEN_NOT_PRESENT), "kms");

        Assert.Equal(KmsErrorKind.RootKeyUnavailable, error.Kind);
        Assert.StartsWith("pkcs11 root key 'hsm-a': token 'kms': C_OpenSession failed: CKR_TOKEN_NOT_PRESENT (the token was removed", error.Message, StringComparison.Ordinal);
        Assert.Contains("KEKs already in memory keep working", error.Message, StringComparison.Ordinal);
    }
}
