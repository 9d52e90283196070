using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Vault.Tests;

/// <summary>
/// A wire-level fake of HashiCorp Vault / OpenBao on loopback (plain http, or TLS with <see cref="LoopbackTls"/>): the
/// Transit engine (<c>encrypt</c>, <c>decrypt</c>, <c>keys</c>, with key versions, rotation, min_decryption_version and
/// real AES-256-GCM with associated_data as AAD), token checking (X-Vault-Token, leases on an injectable clock, max TTL,
/// revocation), Kubernetes / JWT / AppRole login, <c>auth/token/renew-self</c>, and the X-Vault-Namespace header.
/// Faults (5xx, 429 with Retry-After, 403, latency, malformed bodies, tampered ciphertext) are injected per operation:
/// <c>encrypt</c>, <c>decrypt</c>, <c>keys</c>, <c>login</c>, <c>renew</c>.
/// </summary>
public sealed class FakeVault : IAsyncDisposable
{
    public const string Mount = "transit";
    public const string KubernetesRole = "kms-plugin";
    public const string AppRoleId = "3c8a7a2e-role-id";

    private readonly ConcurrentDictionary<string, FakeTransitKey> _keys = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, FakeToken> _tokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _calls = new(StringComparer.Ordinal);
    private LoopbackWebServer? _server;
    private int _aborted;

    private FakeVault(TimeProvider time) => Time = time;

    public TimeProvider Time { get; }

    public Uri Address => _server!.BaseUri;

    /// <summary>When set, every request must carry this X-Vault-Namespace, as a namespaced Vault Enterprise / OpenBao path.</summary>
    public string? Namespace { get; set; }

    /// <summary>Every X-Vault-Namespace value received ("" when absent).</summary>
    public ConcurrentQueue<string> NamespacesSeen { get; } = new();

    public ConcurrentDictionary<string, bool> AcceptedJwts { get; } = new(StringComparer.Ordinal);

    public ConcurrentDictionary<string, bool> AcceptedSecretIds { get; } = new(StringComparer.Ordinal);

    /// <summary>Credentials the login endpoints received, in order (JWTs and secret ids).</summary>
    public ConcurrentQueue<string> LoginCredentialsSeen { get; } = new();

    public TimeSpan LoginTtl { get; set; } = TimeSpan.FromHours(1);

    public TimeSpan MaxTtl { get; set; } = TimeSpan.FromHours(24);

    /// <summary>renew-self answers 403, as for a token revoked or past its max TTL.</summary>
    public bool RenewFails { get; set; }

    /// <summary>The token policy does not allow the transit paths: 403 with any token.</summary>
    public bool PolicyDenies { get; set; }

    public FakeFault? Fault { get; set; }

    /// <summary>Bodies of transit encrypt requests (plaintext removed).</summary>
    public ConcurrentQueue<JsonObject> EncryptRequests { get; } = new();

    public int Aborted => Volatile.Read(ref _aborted);

    public static async Task<FakeVault> StartAsync(TimeProvider? time = null, LoopbackTls? tls = null)
    {
        var fake = new FakeVault(time ?? TimeProvider.System);
        fake._server = await LoopbackWebServer.StartAsync(app => app.Map("/v1/{**path}", fake.HandleAsync), tls);
        return fake;
    }

    /// <summary>Every token the fake has issued (for checking they never reach a log).</summary>
    public IEnumerable<string> IssuedTokens => _tokens.Keys;

    public int Calls(string operation) => _calls.TryGetValue(operation, out var n) ? n : 0;

    public FakeTransitKey CreateKey(string name = "k8s", string type = "aes256-gcm96", bool derived = false)
    {
        var key = new FakeTransitKey(name, type, derived);
        _keys[name] = key;
        return key;
    }

    /// <summary>A token that never expires (like one written by Vault Agent or an operator), for method token.</summary>
    public string IssueStaticToken()
    {
        var token = "hvs." + Convert.ToHexString(RandomNumberGenerator.GetBytes(12));
        _tokens[token] = new FakeToken(Time.GetUtcNow(), TimeSpan.Zero, false);
        return token;
    }

    /// <summary>Every token stops working (revoked, or Vault restored from a snapshot that predates them).</summary>
    public void RevokeAll()
    {
        foreach (var token in _tokens.Values)
        {
            token.Revoked = true;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    private void Count(string operation) => _calls.AddOrUpdate(operation, 1, (_, n) => n + 1);

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.RouteValues["path"] as string ?? "";
        var space = context.Request.Headers["X-Vault-Namespace"].ToString();
        NamespacesSeen.Enqueue(space);
        var operation = path switch
        {
            "auth/token/renew-self" => "renew",
            _ when path.StartsWith("auth/", StringComparison.Ordinal) && path.EndsWith("/login", StringComparison.Ordinal) => "login",
            _ when path.StartsWith(Mount + "/encrypt/", StringComparison.Ordinal) => "encrypt",
            _ when path.StartsWith(Mount + "/decrypt/", StringComparison.Ordinal) => "decrypt",
            _ when path.StartsWith(Mount + "/keys/", StringComparison.Ordinal) => "keys",
            _ => "unknown",
        };
        Count(operation);
        if (Namespace is not null && space.Trim('/') != Namespace)
        {
            await ErrorAsync(context, 404, $"no handler for route \"{path}\". route entry not found.");
            return;
        }

        JsonElement body = default;
        if (context.Request.ContentLength > 0 || context.Request.Method == "POST")
        {
            using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
            var text = await reader.ReadToEndAsync(context.RequestAborted);
            try
            {
                body = JsonDocument.Parse(text.Length == 0 ? "{}" : text).RootElement.Clone();
            }
            catch (JsonException)
            {
                await ErrorAsync(context, 400, "failed to parse JSON input");
                return;
            }
        }

        var fault = Fault;
        var hit = fault is not null && fault.TryHit(operation) ? fault.Kind : (FaultKind?)null;
        if (hit is not null)
        {
            if (fault!.Latency > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(fault.Latency, context.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    Interlocked.Increment(ref _aborted);
                    return;
                }
            }

            switch (hit)
            {
                case FaultKind.InternalError:
                    await ErrorAsync(context, 500, "1 error occurred:\n\t* internal error\n\n");
                    return;
                case FaultKind.ServiceUnavailable:
                    await ErrorAsync(context, 503, "Vault is sealed");
                    return;
                case FaultKind.Throttling:
                    context.Response.Headers.RetryAfter = fault.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
                    await ErrorAsync(context, 429, $"request path \"{path}\": rate limit quota exceeded");
                    return;
                case FaultKind.AccessDenied:
                    await ErrorAsync(context, 403, "1 error occurred:\n\t* permission denied\n\n");
                    return;
                case FaultKind.Malformed:
                    context.Response.ContentType = "application/json";
                    await context.Response.WriteAsync("{\"data\": {\"ciphertext\": ");
                    return;
                case FaultKind.NotFound:
                    await ErrorAsync(context, operation == "keys" ? 404 : 400, "encryption key not found");
                    return;
                case FaultKind.Disabled:
                    await ErrorAsync(context, 400, operation == "decrypt"
                        ? "ciphertext or signature version is disallowed by policy (too old)"
                        : "requested version for encryption is less than the minimum encryption key version");
                    return;
            }
        }

        switch (operation)
        {
            case "login":
                await LoginAsync(context, path, body);
                return;
            case "renew":
                await RenewAsync(context);
                return;
        }

        if (!Authorized(context, out _))
        {
            await ErrorAsync(context, 403, "permission denied");
            return;
        }

        if (PolicyDenies)
        {
            await ErrorAsync(context, 403, "1 error occurred:\n\t* permission denied\n\n");
            return;
        }

        var keyName = path[(path.LastIndexOf('/') + 1)..];
        if (!_keys.TryGetValue(keyName, out var key))
        {
            await ErrorAsync(context, operation == "keys" ? 404 : 400, operation == "keys" ? "" : "encryption key not found");
            return;
        }

        switch (operation)
        {
            case "keys" when context.Request.Method == "GET":
                await ReadKeyAsync(context, key);
                return;
            case "encrypt":
                await EncryptAsync(context, key, body);
                return;
            case "decrypt":
                await DecryptAsync(context, key, body, hit);
                return;
            default:
                await ErrorAsync(context, 405, "unsupported operation");
                return;
        }
    }

    private static async Task ReadKeyAsync(HttpContext context, FakeTransitKey key)
    {
        var latest = key.ReportedLatestVersion ?? key.Versions.Count;
        var versions = new JsonObject();
        for (var v = 1; v <= latest; v++)
        {
            versions[v.ToString(CultureInfo.InvariantCulture)] = 1_700_000_000 + v;
        }

        await DataAsync(context, new JsonObject
        {
            ["name"] = key.Name,
            ["type"] = key.Type,
            ["derived"] = key.Derived,
            ["latest_version"] = latest,
            ["min_decryption_version"] = key.MinDecryptionVersion,
            ["min_encryption_version"] = key.MinEncryptionVersion,
            ["supports_encryption"] = true,
            ["supports_decryption"] = true,
            ["exportable"] = false,
            ["deletion_allowed"] = false,
            ["keys"] = versions,
        });
    }

    private async Task EncryptAsync(HttpContext context, FakeTransitKey key, JsonElement body)
    {
        var record = JsonNode.Parse(body.GetRawText())!.AsObject();
        record.Remove("plaintext");
        EncryptRequests.Enqueue(record);
        var version = body.TryGetProperty("key_version", out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : key.Versions.Count;
        if (version > key.Versions.Count || version < 1)
        {
            await ErrorAsync(context, 400, "invalid key version");
            return;
        }

        if (version < key.MinEncryptionVersion)
        {
            await ErrorAsync(context, 400, "requested version for encryption is less than the minimum encryption key version");
            return;
        }

        var plaintext = body.GetProperty("plaintext").GetBytesFromBase64();
        var aad = body.TryGetProperty("associated_data", out var a) ? a.GetBytesFromBase64() : [];
        var sealedBytes = new byte[12 + plaintext.Length + 16];
        RandomNumberGenerator.Fill(sealedBytes.AsSpan(0, 12));
        using (var aes = new AesGcm(key.Versions[version - 1], 16))
        {
            aes.Encrypt(sealedBytes.AsSpan(0, 12), plaintext, sealedBytes.AsSpan(12, plaintext.Length), sealedBytes.AsSpan(12 + plaintext.Length), aad);
        }

        await DataAsync(context, new JsonObject
        {
            ["ciphertext"] = $"vault:v{version}:" + Convert.ToBase64String(sealedBytes),
            ["key_version"] = version,
        });
    }

    private static async Task DecryptAsync(HttpContext context, FakeTransitKey key, JsonElement body, FaultKind? fault)
    {
        var ciphertext = body.GetProperty("ciphertext").GetString() ?? "";
        var parts = ciphertext.Split(':');
        if (parts.Length != 3 || parts[0] != "vault" || !parts[1].StartsWith('v')
            || !int.TryParse(parts[1][1..], NumberStyles.None, CultureInfo.InvariantCulture, out var version))
        {
            await ErrorAsync(context, 400, "invalid ciphertext: no prefix");
            return;
        }

        if (version < key.MinDecryptionVersion)
        {
            await ErrorAsync(context, 400, "ciphertext or signature version is disallowed by policy (too old)");
            return;
        }

        if (version > key.Versions.Count)
        {
            await ErrorAsync(context, 400, "invalid ciphertext: version is too new");
            return;
        }

        byte[] sealedBytes;
        try
        {
            sealedBytes = Convert.FromBase64String(parts[2]);
        }
        catch (FormatException)
        {
            await ErrorAsync(context, 400, "invalid ciphertext: could not decode base64");
            return;
        }

        if (fault == FaultKind.TamperCiphertext)
        {
            sealedBytes[^1] ^= 0x01;
        }

        var aad = body.TryGetProperty("associated_data", out var a) ? a.GetBytesFromBase64() : [];
        if (sealedBytes.Length < 12 + 16)
        {
            await ErrorAsync(context, 400, "invalid ciphertext: too short");
            return;
        }

        var plaintext = new byte[sealedBytes.Length - 28];
        try
        {
            using var aes = new AesGcm(key.Versions[version - 1], 16);
            aes.Decrypt(sealedBytes.AsSpan(0, 12), sealedBytes.AsSpan(12, plaintext.Length), sealedBytes.AsSpan(sealedBytes.Length - 16), plaintext, aad);
        }
        catch (CryptographicException)
        {
            await ErrorAsync(context, 400, "cipher: message authentication failed");
            return;
        }

        if (fault == FaultKind.CorruptPlaintext)
        {
            plaintext[0] ^= 0xFF;
        }

        await DataAsync(context, new JsonObject { ["plaintext"] = Convert.ToBase64String(plaintext) });
    }

    private async Task LoginAsync(HttpContext context, string path, JsonElement body)
    {
        var mount = path["auth/".Length..^"/login".Length];
        bool accepted;
        switch (mount)
        {
            case "kubernetes" or "jwt" or "k8s-cluster-1":
            {
                var role = body.TryGetProperty("role", out var r) ? r.GetString() : null;
                var jwt = body.TryGetProperty("jwt", out var j) ? j.GetString() ?? "" : "";
                LoginCredentialsSeen.Enqueue(jwt);
                if (role != KubernetesRole)
                {
                    await ErrorAsync(context, 400, $"invalid role name \"{role}\"");
                    return;
                }

                accepted = AcceptedJwts.ContainsKey(jwt);
                break;
            }

            case "approle":
            {
                var roleId = body.TryGetProperty("role_id", out var r) ? r.GetString() : null;
                var secretId = body.TryGetProperty("secret_id", out var s) ? s.GetString() ?? "" : "";
                LoginCredentialsSeen.Enqueue(secretId);
                accepted = roleId == AppRoleId && AcceptedSecretIds.ContainsKey(secretId);
                if (!accepted)
                {
                    await ErrorAsync(context, 400, "invalid role or secret ID");
                    return;
                }

                break;
            }

            default:
                await ErrorAsync(context, 400, $"no handler for route \"{path}\"");
                return;
        }

        if (!accepted)
        {
            await ErrorAsync(context, 403, "permission denied");
            return;
        }

        var token = "hvs." + Convert.ToHexString(RandomNumberGenerator.GetBytes(12));
        var issued = new FakeToken(Time.GetUtcNow(), LoginTtl, true);
        _tokens[token] = issued;
        await AuthAsync(context, token, LoginTtl);
    }

    private async Task RenewAsync(HttpContext context)
    {
        if (!Authorized(context, out var token) || RenewFails)
        {
            await ErrorAsync(context, 403, "permission denied");
            return;
        }

        var entry = _tokens[token];
        if (!entry.Renewable)
        {
            await ErrorAsync(context, 400, "lease is not renewable");
            return;
        }

        var now = Time.GetUtcNow();
        var left = entry.CreatedAt + MaxTtl - now;
        var lease = left < LoginTtl ? left : LoginTtl;
        entry.ExpiresAt = now + lease;
        await AuthAsync(context, token, lease);
    }

    private bool Authorized(HttpContext context, out string token)
    {
        token = context.Request.Headers["X-Vault-Token"].ToString();
        return _tokens.TryGetValue(token, out var entry) && !entry.Revoked && Time.GetUtcNow() < entry.ExpiresAt;
    }

    private static async Task AuthAsync(HttpContext context, string token, TimeSpan lease)
    {
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(new JsonObject
        {
            ["request_id"] = Guid.NewGuid().ToString(),
            ["auth"] = new JsonObject
            {
                ["client_token"] = token,
                ["accessor"] = "acc." + Guid.NewGuid().ToString("N")[..12],
                ["policies"] = new JsonArray("default", "kms-plugin"),
                ["lease_duration"] = (long)lease.TotalSeconds,
                ["renewable"] = true,
            },
        }.ToJsonString());
    }

    private static async Task DataAsync(HttpContext context, JsonObject data)
    {
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(new JsonObject { ["request_id"] = Guid.NewGuid().ToString(), ["data"] = data }.ToJsonString());
    }

    private static async Task ErrorAsync(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(new JsonObject { ["errors"] = message.Length == 0 ? new JsonArray() : new JsonArray(message) }.ToJsonString());
    }

    private sealed class FakeToken(DateTimeOffset createdAt, TimeSpan ttl, bool renewable)
    {
        public DateTimeOffset CreatedAt { get; } = createdAt;

        public DateTimeOffset ExpiresAt { get; set; } = ttl == TimeSpan.Zero ? DateTimeOffset.MaxValue : createdAt + ttl;

        public bool Renewable { get; } = renewable;

        public bool Revoked { get; set; }
    }
}

/// <summary>A Transit key in the fake: one AES-256 key per version.</summary>
public sealed class FakeTransitKey(string name, string type, bool derived)
{
    private readonly Lock _rotation = new();

    // Replaced whole on rotation, never changed in place: request handlers read it while a test rotates the key.
    private volatile byte[][] _versions = [RandomNumberGenerator.GetBytes(32)];

    public string Name { get; } = name;

    public string Type { get; } = type;

    public bool Derived { get; } = derived;

    /// <summary>The key of each version, version 1 first.</summary>
    public IReadOnlyList<byte[]> Versions => _versions;

    public int MinDecryptionVersion { get; set; } = 1;

    public int MinEncryptionVersion { get; set; }

    /// <summary>
    /// When set, reading the key reports this <c>latest_version</c> (and only the versions up to it), as a Vault
    /// Enterprise performance standby or an OpenBao read replica that has not caught up with a rotation, or a Vault
    /// restored from a snapshot taken before it, answers; encrypt and decrypt still know every version.
    /// </summary>
    public int? ReportedLatestVersion { get; set; }

    /// <summary><c>vault write -f transit/keys/NAME/rotate</c>.</summary>
    public void Rotate()
    {
        lock (_rotation)
        {
            _versions = [.. _versions, RandomNumberGenerator.GetBytes(32)];
        }
    }
}
