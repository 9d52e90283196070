using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Vault;

/// <summary>A Vault token and its lease, as a login or renewal returned it (<c>auth.client_token</c>, <c>lease_duration</c>, <c>renewable</c>).</summary>
internal readonly record struct VaultLease(string Token, TimeSpan Duration, bool Renewable);

/// <summary>
/// The auth calls: <c>POST /v1/auth/{mount}/login</c> for Kubernetes, JWT and AppRole (Vault API docs, auth methods),
/// and <c>POST /v1/auth/token/renew-self</c>. Credentials are read from their files on every login — the kubelet
/// rotates projected service-account tokens and operators rotate AppRole secret ids — and zeroed after the call.
/// </summary>
internal static class VaultLogin
{
    public static async Task<VaultLease> LoginAsync(VaultHttpClient http, VaultTransitRootKeyOptions options, CancellationToken cancellationToken)
    {
        var auth = options.Auth;
        byte[]? secret = null;
        byte[]? roleId = null;
        try
        {
            SecretJsonBody body;
            switch (auth.Method)
            {
                case VaultAuthMethod.Kubernetes or VaultAuthMethod.Jwt:
                    secret = SecretFile.Read(auth.EffectiveTokenFile!, "auth.tokenFile", options.Name, privateFile: false);
                    body = SecretJsonBody.Create(w =>
                    {
                        w.WriteString("role", auth.Role);
                        w.WriteString("jwt", secret);
                    });
                    break;

                case VaultAuthMethod.AppRole:
                    roleId = auth.RoleIdFile is { } roleIdFile
                        ? SecretFile.Read(roleIdFile, "auth.roleIdFile", options.Name, privateFile: false)
                        : Encoding.UTF8.GetBytes(auth.RoleId!);
                    secret = SecretFile.Read(auth.SecretIdFile!, "auth.secretIdFile", options.Name, privateFile: true);
                    body = SecretJsonBody.Create(w =>
                    {
                        w.WriteString("role_id", roleId);
                        w.WriteString("secret_id", secret);
                    });
                    break;

                default:
                    throw new InvalidOperationException($"auth method {auth.Method} does not log in");
            }

            using (body)
            {
                using var response = await http.SendAsync(HttpMethod.Post, $"auth/{auth.EffectiveMount}/login", body.Memory, token: null, cancellationToken);
                return ParseAuth(response, options.Name, "login");
            }
        }
        finally
        {
            if (secret is not null)
            {
                CryptographicOperations.ZeroMemory(secret);
            }

            if (roleId is not null)
            {
                CryptographicOperations.ZeroMemory(roleId);
            }
        }
    }

    /// <summary>Renews the token's own lease by its default increment (Vault caps it at the token's max TTL).</summary>
    public static async Task<VaultLease> RenewSelfAsync(VaultHttpClient http, string token, string rootKeyName, CancellationToken cancellationToken)
    {
        using var response = await http.SendAsync(HttpMethod.Post, "auth/token/renew-self", "{}"u8.ToArray(), token, cancellationToken);
        return ParseAuth(response, rootKeyName, "token renewal");
    }

    private static VaultLease ParseAuth(VaultResponse response, string rootKeyName, string what)
    {
        var auth = response.Section("auth");
        if (!auth.TryGetProperty("client_token", out var tokenElement) || tokenElement.ValueKind != JsonValueKind.String
            || tokenElement.GetString() is not { Length: > 0 } token)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyUnavailable, $"vault root key '{rootKeyName}': {what} returned no client_token");
        }

        var seconds = auth.TryGetProperty("lease_duration", out var lease) && lease.ValueKind == JsonValueKind.Number && lease.TryGetInt64(out var s) ? s : 0;
        var renewable = auth.TryGetProperty("renewable", out var renew) && renew.ValueKind == JsonValueKind.True;
        return new VaultLease(token, TimeSpan.FromSeconds(Math.Max(0, seconds)), renewable);
    }
}
