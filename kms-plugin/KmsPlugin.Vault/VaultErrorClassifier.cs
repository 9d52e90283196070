using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text.Json;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;

namespace KmsPlugin.Vault;

/// <summary>What the plugin was doing when Vault failed: the same status means different things for different calls.</summary>
internal enum VaultOperation
{
    Login,
    Renew,
    ReadKey,
    Encrypt,
    Decrypt,
}

/// <summary>
/// The one place that turns Vault / OpenBao failures into <see cref="KmsErrorKind"/>s (Vault HTTP API, "HTTP Status
/// Codes"; Transit errors from builtin/logical/transit). Messages carry Vault's error strings, never tokens or bodies.
/// </summary>
internal static class VaultErrorClassifier
{
    public static KmsErrorKind Classify(VaultOperation operation, VaultResponseException error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return (int)error.Status switch
        {
            // Transit answers 400 for a ciphertext that does not authenticate or parse, but also for a key that does not
            // exist or a version below min_decryption_version: only the former are the data's fault.
            400 when operation == VaultOperation.Decrypt && IsCiphertextProblem(error) => KmsErrorKind.Corruption,
            400 => KmsErrorKind.RootKeyDenied,

            // 401/403: a bad, expired or revoked token, or a policy without the path. The caller re-logs in once first.
            401 or 403 => KmsErrorKind.RootKeyDenied,
            404 or 405 => KmsErrorKind.RootKeyDenied,
            408 => KmsErrorKind.RootKeyUnavailable,

            // 412: a performance standby has not caught up yet (Vault Enterprise consistency); retry.
            412 => KmsErrorKind.RootKeyUnavailable,
            429 => KmsErrorKind.Throttled,

            // 472/473: DR-secondary / performance-standby answers; 5xx: sealed, standby, internal error, proxy trouble.
            472 or 473 or >= 500 => KmsErrorKind.RootKeyUnavailable,
            _ => KmsErrorKind.RootKeyDenied,
        };
    }

    public static KmsPluginException ToException(string rootKeyName, VaultOperation operation, Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        var what = Describe(operation);
        switch (error)
        {
            case KmsPluginException typed:
                return typed;

            case VaultResponseException response:
            {
                var kind = Classify(operation, response);
                var hint = (int)response.Status switch
                {
                    403 => operation == VaultOperation.Login
                        ? " (check the auth role and its bound service account / secret id)"
                        : " (check the token's policy: update on the transit encrypt/decrypt paths, read on keys/<key>)",
                    404 => " (check address, namespace, mount and key)",
                    503 => " (Vault is sealed, in standby or overloaded)",
                    _ => "",
                };
                return new KmsPluginException(kind, $"vault root key '{rootKeyName}': {what} failed: {OneLine(response.Message)}{hint}", error)
                    .With(response.RetryAfter);
            }

            case HttpRequestException { InnerException: AuthenticationException tls }:
                // An untrusted or mismatched server certificate is configuration (caFile, address): retrying will not fix it.
                return new KmsPluginException(KmsErrorKind.RootKeyDenied,
                    $"vault root key '{rootKeyName}': {what} failed: TLS: {OneLine(tls.Message)} (check caFile and that address matches the certificate)", error);

            case TimeoutException:
                return new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"vault root key '{rootKeyName}': {what} timed out (requestTimeout)", error);

            case HttpRequestException or IOException or SocketException:
                return new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                    $"vault root key '{rootKeyName}': {what} failed: cannot reach Vault: {OneLine(Innermost(error).Message)}", error);

            case JsonException or FormatException or InvalidDataException:
                return new KmsPluginException(KmsErrorKind.RootKeyUnavailable,
                    $"vault root key '{rootKeyName}': {what} failed: Vault's response could not be read: {OneLine(error.Message)}", error);

            default:
                return new KmsPluginException(KmsErrorKind.Internal, $"vault root key '{rootKeyName}': {what} failed unexpectedly: {error.GetType().Name}", error);
        }
    }

    private static bool IsCiphertextProblem(VaultResponseException error) =>
        !(error.Mentions("not found") || error.Mentions("too old") || error.Mentions("disallowed") || error.Mentions("minimum")
            || error.Mentions("permission"))
        && (error.Mentions("ciphertext") || error.Mentions("authentication failed") || error.Mentions("decode") || error.Mentions("decrypt"));

    private static string Describe(VaultOperation operation) => operation switch
    {
        VaultOperation.Login => "login",
        VaultOperation.Renew => "token renewal",
        VaultOperation.ReadKey => "reading the transit key",
        VaultOperation.Encrypt => "transit encrypt",
        _ => "transit decrypt",
    };

    private static Exception Innermost(Exception error)
    {
        while (error.InnerException is not null)
        {
            error = error.InnerException;
        }

        return error;
    }

    private static string OneLine(string message)
    {
        var line = string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        return line.Length <= 400 ? line : line[..400] + "…";
    }
}
