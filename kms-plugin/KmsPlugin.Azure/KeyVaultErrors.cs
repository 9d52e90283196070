using System.Net.Sockets;
using System.Security.Authentication;
using System.Text.Json;
using System.Text.RegularExpressions;
using Azure;
using Azure.Identity;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using Microsoft.Identity.Client;

namespace KmsPlugin.Azure;

/// <summary>
/// The one place that turns Key Vault and Entra ID failures into <see cref="KmsErrorKind"/>s (Key Vault REST
/// "Azure Key Vault REST API Error Codes" and "throttling guidance"):
/// 401/403 (incl. <c>Forbidden</c>/<c>KeyDisabled</c>/<c>ForbiddenByPolicy</c>), 404, other 4xx → RootKeyDenied;
/// 400 on unwrapkey → Corruption (the wrapped value did not decrypt); 429 → Throttled; 408/5xx/network/timeouts →
/// RootKeyUnavailable. Messages carry the HTTP status, the Azure error code and a bounded excerpt of Azure's message,
/// never a token or a request body.
/// </summary>
internal static partial class KeyVaultErrors
{
    private const int MaxMessageChars = 240;

    public static KmsPluginException FromResponse(string rootKey, string operation, int status, BinaryData? body, TimeSpan? retryAfter, bool reauthenticated)
    {
        var (code, innerCode, message) = ParseError(body);
        var codes = innerCode is null ? code : $"{code}/{innerCode}";
        var what = $"azure root key '{rootKey}': {operation} failed: HTTP {status}" + (codes is null ? "" : $" ({codes})") + (message is null ? "" : $": {message}");
        var kind = status switch
        {
            401 => KmsErrorKind.RootKeyDenied,
            403 or 404 => KmsErrorKind.RootKeyDenied,
            400 when operation == KeyVaultClient.UnwrapOperation => KmsErrorKind.Corruption,
            408 => KmsErrorKind.RootKeyUnavailable,
            429 => KmsErrorKind.Throttled,
            >= 500 => KmsErrorKind.RootKeyUnavailable,
            _ => KmsErrorKind.RootKeyDenied,
        };
        var hint = status switch
        {
            401 => reauthenticated ? " (the vault rejected a freshly acquired token too: check the tenant and the token scope)" : "",
            403 when innerCode == "KeyDisabled" || code == "KeyDisabled" => " (the key version is disabled)",
            403 => " (grant the identity wrapKey, unwrapKey and get on this key: Key Vault Crypto User, or Managed HSM Crypto User)",
            404 => " (the key or key version does not exist in this vault)",
            400 when kind == KmsErrorKind.Corruption => " (the wrapped KEK does not decrypt under this key version)",
            _ => "",
        };
        return new KmsPluginException(kind, what + hint).With(kind is KmsErrorKind.Throttled or KmsErrorKind.RootKeyUnavailable ? retryAfter : null);
    }

    /// <summary>A failure before any HTTP response: token acquisition, TLS, connection, timeout.</summary>
    public static KmsPluginException FromException(string rootKey, string operation, Exception error)
    {
        var prefix = $"azure root key '{rootKey}': {operation} failed";
        switch (error)
        {
            case CredentialUnavailableException:
                return new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{prefix}: credential unavailable: {Excerpt(error.Message)}", error);
            case AuthenticationFailedException:
                return FromTokenFailure(prefix, error);
            case OperationCanceledException:
                return new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"{prefix}: no answer within the network timeout", error);
        }

        if (Find<AuthenticationException>(error) is { } tls)
        {
            // The endpoint's certificate is not trusted: a retry will not change that.
            return new KmsPluginException(KmsErrorKind.RootKeyDenied,
                $"{prefix}: TLS: {Excerpt(tls.Message)} (for a private CA or TLS-inspecting proxy set caFile)", error);
        }

        return new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"{prefix}: {Excerpt(Innermost(error).Message)}", error);
    }

    /// <summary>Entra ID refused or could not be reached: by MSAL's HTTP status when there is one.</summary>
    private static KmsPluginException FromTokenFailure(string prefix, Exception error)
    {
        if (Find<AuthenticationException>(error) is { } tls)
        {
            return new KmsPluginException(KmsErrorKind.RootKeyDenied,
                $"{prefix}: Entra ID token request failed: TLS: {Excerpt(tls.Message)} (for a private CA or TLS-inspecting proxy set caFile)", error);
        }

        if (Find<MsalServiceException>(error) is { } service)
        {
            // MSAL's message wraps the server's "AADSTSnnnnn: ..." line, the part an operator can look up.
            var server = AadstsLine().Match(service.Message);
            var detail = server.Success ? server.Value : Excerpt(service.Message);
            var kind = service.StatusCode switch
            {
                429 => KmsErrorKind.Throttled,

                // 0: no HTTP answer at all (connection refused, DNS, timeout).
                0 or 408 or >= 500 => KmsErrorKind.RootKeyUnavailable,
                _ => KmsErrorKind.RootKeyDenied,
            };
            return new KmsPluginException(kind,
                $"{prefix}: Entra ID token request failed: HTTP {service.StatusCode} {Printable(service.ErrorCode)}: {Excerpt(detail)}", error);
        }

        var network = Find<HttpRequestException>(error) is not null || Find<SocketException>(error) is not null
            || Find<TimeoutException>(error) is not null || Find<OperationCanceledException>(error) is not null;
        return new KmsPluginException(network ? KmsErrorKind.RootKeyUnavailable : KmsErrorKind.RootKeyDenied,
            $"{prefix}: Entra ID token request failed: {Excerpt(Innermost(error).Message)}", error);
    }

    /// <summary>Key Vault error body: <c>{"error":{"code":"Forbidden","message":"...","innererror":{"code":"KeyDisabled"}}}</c>.</summary>
    private static (string? Code, string? InnerCode, string? Message) ParseError(BinaryData? body)
    {
        if (body is null || body.ToMemory().IsEmpty)
        {
            return (null, null, null);
        }

        try
        {
            using var document = JsonDocument.Parse(body.ToMemory());
            if (!document.RootElement.TryGetProperty("error", out var error) || error.ValueKind != JsonValueKind.Object)
            {
                return (null, null, null);
            }

            var code = Text(error, "code");
            var message = Text(error, "message");
            var inner = error.TryGetProperty("innererror", out var innerError) && innerError.ValueKind == JsonValueKind.Object ? Text(innerError, "code") : null;
            return (Printable(code), Printable(inner), message is null ? null : Excerpt(message));
        }
        catch (JsonException)
        {
            return (null, null, null);
        }
    }

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static string? Printable(string? code) =>
        code is null ? null : new string(code.Take(64).Where(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_').ToArray());

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

            if (e is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions)
                {
                    if (Find<T>(inner) is { } found)
                    {
                        return found;
                    }
                }
            }
        }

        return null;
    }

    [GeneratedRegex(@"AADSTS\d+:[^\r\n]*")]
    private static partial Regex AadstsLine();

    private static Exception Innermost(Exception error)
    {
        var e = error;
        while (e.InnerException is not null && e is RequestFailedException or HttpRequestException or AuthenticationFailedException)
        {
            e = e.InnerException;
        }

        return e;
    }
}
