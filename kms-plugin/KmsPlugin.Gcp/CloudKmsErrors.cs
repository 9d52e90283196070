using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text.Json;
using Google.Apis.Auth.OAuth2.Responses;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Gcp;

/// <summary>
/// The one place that turns Cloud KMS and Google token failures into <see cref="KmsErrorKind"/>s, by the
/// google.rpc.Code in the REST error body (<c>{"error":{"code":403,"message":"...","status":"PERMISSION_DENIED"}}</c>,
/// AIP-193) and else the HTTP status: PERMISSION_DENIED, UNAUTHENTICATED, NOT_FOUND, FAILED_PRECONDITION (a disabled
/// or destroyed version) → RootKeyDenied; INVALID_ARGUMENT on decrypt → Corruption (the ciphertext or its AAD does not
/// authenticate); RESOURCE_EXHAUSTED / 429 → Throttled; UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED, ABORTED, 5xx,
/// network and timeouts → RootKeyUnavailable. Messages carry the status and a bounded excerpt, never a token or body.
/// </summary>
internal static class CloudKmsErrors
{
    private const int MaxMessageChars = 240;

    public static KmsPluginException FromResponse(string rootKey, string operation, HttpStatusCode status, ReadOnlySpan<byte> body, TimeSpan? retryAfter)
    {
        var (rpcStatus, message) = ParseError(body);
        var code = (int)status;
        var kind = rpcStatus switch
        {
            "PERMISSION_DENIED" or "UNAUTHENTICATED" or "NOT_FOUND" or "FAILED_PRECONDITION" => KmsErrorKind.RootKeyDenied,
            "INVALID_ARGUMENT" when operation == CloudKmsClient.DecryptOperation => KmsErrorKind.Corruption,
            "RESOURCE_EXHAUSTED" => KmsErrorKind.Throttled,
            "UNAVAILABLE" or "INTERNAL" or "DEADLINE_EXCEEDED" or "ABORTED" or "UNKNOWN" => KmsErrorKind.RootKeyUnavailable,
            _ => code switch
            {
                400 when operation == CloudKmsClient.DecryptOperation => KmsErrorKind.Corruption,
                408 => KmsErrorKind.RootKeyUnavailable,
                429 => KmsErrorKind.Throttled,
                >= 500 => KmsErrorKind.RootKeyUnavailable,
                _ => KmsErrorKind.RootKeyDenied,
            },
        };
        var hint = rpcStatus switch
        {
            "PERMISSION_DENIED" => " (grant roles/cloudkms.cryptoKeyEncrypterDecrypter and cloudkms.cryptoKeys.get on this key)",
            "FAILED_PRECONDITION" => " (the key version is disabled, destroyed or scheduled for destruction)",
            "NOT_FOUND" => " (the key or key version does not exist)",
            _ when kind == KmsErrorKind.Corruption => " (the wrapped KEK does not decrypt under this key with this associated data)",
            _ => "",
        };
        var text = $"gcp root key '{rootKey}': {operation} failed: HTTP {code}" + (rpcStatus is null ? "" : $" {rpcStatus}")
            + (message is null ? "" : $": {message}") + hint;
        return new KmsPluginException(kind, text).With(kind is KmsErrorKind.Throttled or KmsErrorKind.RootKeyUnavailable ? retryAfter : null);
    }

    /// <summary>A failure before any Cloud KMS response: token acquisition, TLS, connection, timeout.</summary>
    public static KmsPluginException FromException(string rootKey, string operation, Exception error)
    {
        var prefix = $"gcp root key '{rootKey}': {operation} failed";
        if (Find<TokenResponseException>(error) is { } token)
        {
            // The token endpoint answered with an OAuth error (RFC 6749 section 5.2), e.g. invalid_grant.
            var code = token.StatusCode is { } s ? (int)s : 0;
            var kind = code switch
            {
                429 => KmsErrorKind.Throttled,
                0 or 408 or >= 500 => KmsErrorKind.RootKeyUnavailable,
                _ => KmsErrorKind.RootKeyDenied,
            };
            return new KmsPluginException(kind,
                $"{prefix}: token request refused: HTTP {code} {Printable(token.Error?.Error)}: {Excerpt(token.Error?.ErrorDescription ?? "")}", error);
        }

        if (Find<AuthenticationException>(error) is { } tls)
        {
            return new KmsPluginException(KmsErrorKind.RootKeyDenied,
                $"{prefix}: TLS: {Excerpt(tls.Message)} (for a private CA or TLS-inspecting proxy set caFile)", error);
        }

        if (error is OperationCanceledException || Find<TimeoutException>(error) is not null)
        {
            return new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"{prefix}: no answer within the network timeout", error);
        }

        if (Find<HttpRequestException>(error) is { } http)
        {
            return new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"{prefix}: {Excerpt(http.Message)}", error);
        }

        if (Find<SocketException>(error) is { } socket)
        {
            return new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"{prefix}: {Excerpt(socket.Message)}", error);
        }

        return new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"{prefix}: {error.GetType().Name}: {Excerpt(error.Message)}", error);
    }

    private static (string? Status, string? Message) ParseError(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty)
        {
            return (null, null);
        }

        try
        {
            var reader = new Utf8JsonReader(body);
            using var document = JsonDocument.ParseValue(ref reader);
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("error", out var error) || error.ValueKind != JsonValueKind.Object)
            {
                return (null, null);
            }

            var status = error.TryGetProperty("status", out var s) && s.ValueKind == JsonValueKind.String ? Printable(s.GetString()) : null;
            var message = error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? Excerpt(m.GetString() ?? "") : null;
            return (status, message);
        }
        catch (JsonException)
        {
            return (null, null);
        }
    }

    private static string? Printable(string? code) =>
        code is null ? null : new string(code.Take(64).Where(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.').ToArray());

    internal static string Excerpt(string text)
    {
        var line = new string(text.Select(c => char.IsControl(c) ? ' ' : c).ToArray()).Trim();
        return line.Length <= MaxMessageChars ? line : line[..MaxMessageChars] + "…";
    }

    private static T? Find<T>(Exception? error)
        where T : Exception
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is T match)
            {
                return match;
            }
        }

        return null;
    }
}
