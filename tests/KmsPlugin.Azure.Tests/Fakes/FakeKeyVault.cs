using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Nodes;
using KmsPlugin.TestSupport;
using Microsoft.AspNetCore.Http;

namespace KmsPlugin.Azure.Tests.Fakes;

/// <summary>
/// A wire-level fake of Azure Key Vault / Managed HSM keys (Key Vault REST 7.x: GET keys/{name}[/{version}], POST
/// keys/{name}/{version}/wrapkey|unwrapkey, error bodies <c>{"error":{"code","message","innererror"}}</c>) and of the
/// Entra ID endpoints the credentials use (the v2.0 token endpoint for client assertion, secret and certificate; the
/// App Service managed-identity endpoint), on loopback over TLS. It does real RSA-OAEP-256 and A256KW, checks the
/// bearer token on every key call, keeps versions (newest last), and applies a <see cref="FaultPlan"/>.
/// </summary>
internal sealed class FakeKeyVault : IAsyncDisposable
{
    public const string TenantId = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    public const string ClientId = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
    public const string Scope = "https://vault.azure.net/.default";
    public const string ManagedIdentityHeader = "fake-identity-header";

    private readonly ConcurrentDictionary<string, List<FakeKeyVersion>> _keys = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _tokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _requests = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _reportedCurrent = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentQueue<IReadOnlyDictionary<string, string>> _tokenRequests = new();
    private readonly ConcurrentQueue<string> _unknownRequests = new();
    private LoopbackWebServer? _server;

    private FakeKeyVault()
    {
    }

    public Uri BaseUri => _server!.BaseUri;

    /// <summary>The vault URL (no trailing slash, as an operator writes it).</summary>
    public string VaultUrl => BaseUri.ToString().TrimEnd('/');

    public FaultPlan Faults { get; } = new();

    public string ApiVersion { get; set; } = "7.4";

    /// <summary>The projected service-account token a workload identity must present as client_assertion.</summary>
    public string FederatedToken { get; set; } = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZS1zeXN0ZW06a21zIn0.c2ln";

    public string ClientSecret { get; set; } = "fake-client-secret-value";

    /// <summary>The service principal's certificate (public part) a client-certificate assertion must be signed with.</summary>
    public X509Certificate2? ClientCertificate { get; set; }

    public TimeSpan TokenLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>When set, a 401 carries a Continuous Access Evaluation claims challenge, as Key Vault sends after a revocation.</summary>
    public bool ClaimsChallenge { get; set; }

    /// <summary>Every form posted to the token endpoint (and the managed-identity query), in order.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, string>> TokenRequests => [.. _tokenRequests];

    /// <summary>Requests no route matched (method and path): a client asking for something the fake does not serve.</summary>
    public IReadOnlyList<string> UnknownRequests => [.. _unknownRequests];

    public static async Task<FakeKeyVault> StartAsync()
    {
        var fake = new FakeKeyVault();
        fake._server = await LoopbackWebServer.StartAsync(fake.Map, LoopbackTls.Shared);
        return fake;
    }

    /// <summary>Requests received for a key operation (<c>get</c>, <c>wrapkey</c>, <c>unwrapkey</c>), faulted or not.</summary>
    public int Requests(string operation) => _requests.GetValueOrDefault(operation);

    /// <summary>Requests received for a key operation naming <paramref name="version"/> in its path (e.g. wrapkey with one version).</summary>
    public int Requests(string operation, string version) => _requests.GetValueOrDefault($"{operation} {version}");

    /// <summary>Adds an RSA-2048 key (Key Vault) or a new version of it; returns the version.</summary>
    public string AddRsaVersion(string name) => AddVersion(name, new FakeKeyVersion(NewVersion(), "RSA", RSA.Create(2048), null));

    /// <summary>Adds an AES-256 key (Managed HSM, kty oct-HSM) or a new version of it; returns the version.</summary>
    public string AddAesVersion(string name) => AddVersion(name, new FakeKeyVersion(NewVersion(), "oct-HSM", null, RandomNumberGenerator.GetBytes(32)));

    public void SetEnabled(string name, string version, bool enabled) => Find(name, version)!.Enabled = enabled;

    /// <summary>
    /// <c>GET keys/{name}</c> (no version) answers with <paramref name="version"/> instead of the newest version, as a
    /// vault's read-only replica that has not caught up with a rotation answers during a regional failover; requests
    /// naming a version are unaffected.
    /// </summary>
    public void ReportAsCurrent(string name, string version) => _reportedCurrent[name] = version;

    /// <summary>Makes every issued token invalid, as when Entra ID revokes a session.</summary>
    public void RevokeTokens() => _tokens.Clear();

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        foreach (var version in _keys.Values.SelectMany(v => v))
        {
            version.Rsa?.Dispose();
        }
    }

    private static string NewVersion() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    private string AddVersion(string name, FakeKeyVersion version)
    {
        var versions = _keys.GetOrAdd(name, _ => []);
        lock (versions)
        {
            versions.Add(version);
        }

        return version.Version;
    }

    private FakeKeyVersion? Find(string name, string? version)
    {
        if (!_keys.TryGetValue(name, out var versions))
        {
            return null;
        }

        lock (versions)
        {
            return version is null ? versions.LastOrDefault() : versions.FirstOrDefault(v => v.Version == version);
        }
    }

    private void Map(WebApplication app)
    {
        app.MapGet("/keys/{name}", (HttpContext context, string name) => KeyOperationAsync(context, "get", name, null, null));
        app.MapGet("/keys/{name}/{version}", (HttpContext context, string name, string version) => KeyOperationAsync(context, "get", name, version, null));
        app.MapPost("/keys/{name}/{version}/{action}", (HttpContext context, string name, string version, string action) =>
            KeyOperationAsync(context, action, name, version, action));
        app.MapPost("/{tenant}/oauth2/v2.0/token", TokenAsync);
        app.MapGet("/msi/token", ManagedIdentityToken);
        app.MapFallback((HttpContext context) =>
        {
            _unknownRequests.Enqueue($"{context.Request.Method} {context.Request.Path}{context.Request.QueryString}");
            return Results.NotFound();
        });
    }

    private async Task<IResult> KeyOperationAsync(HttpContext context, string operation, string name, string? version, string? action)
    {
        _requests.AddOrUpdate(operation, 1, (_, n) => n + 1);
        if (version is not null)
        {
            _requests.AddOrUpdate($"{operation} {version}", 1, (_, n) => n + 1);
        }

        if (context.Request.Query["api-version"] != ApiVersion)
        {
            return Error(400, "BadParameter", null, "The specified version is not supported", null);
        }

        if (!Authorized(context))
        {
            var claims = Base64Url.EncodeToString("{\"access_token\":{\"nbf\":{\"essential\":true,\"value\":\"1700000000\"}}}"u8);
            context.Response.Headers.WWWAuthenticate = $"Bearer authorization=\"{BaseUri}{TenantId}\", resource=\"https://vault.azure.net\""
                + (ClaimsChallenge ? $", error=\"insufficient_claims\", claims=\"{claims}\"" : "");
            return Error(401, "Unauthorized", null, "AKV10000: Request is missing a Bearer or PoP token.", null);
        }

        var fault = Faults.Take(operation);
        if (fault is { Action: FaultAction.Delay })
        {
            await Task.Delay(fault.Delay, context.RequestAborted);
            fault = null;
        }

        if (fault is { Action: FaultAction.Error })
        {
            return Error(fault.Status, fault.Code ?? "ServiceUnavailable", fault.InnerCode, "injected fault", fault.RetryAfter);
        }

        var key = Find(name, version ?? _reportedCurrent.GetValueOrDefault(name));
        if (key is null)
        {
            return Error(404, "KeyNotFound", null, $"A key with (name/id) {name}/{version} was not found in this key vault.", null);
        }

        var kid = $"{BaseUri}keys/{name}/{key.Version}";
        if (operation == "get")
        {
            var keyObject = new JsonObject
            {
                ["kid"] = kid,
                ["kty"] = key.KeyType,
                ["key_ops"] = new JsonArray("encrypt", "decrypt", "wrapKey", "unwrapKey"),
            };
            if (key.Rsa is { } rsa)
            {
                var parameters = rsa.ExportParameters(false);
                keyObject["n"] = Base64Url.EncodeToString(parameters.Modulus);
                keyObject["e"] = Base64Url.EncodeToString(parameters.Exponent);
            }

            return Results.Json(new JsonObject
            {
                ["key"] = keyObject,
                ["attributes"] = new JsonObject { ["enabled"] = key.Enabled, ["recoveryLevel"] = "Recoverable+Purgeable" },
            });
        }

        if (action is not ("wrapkey" or "unwrapkey"))
        {
            return Error(400, "BadParameter", null, $"unknown operation {action}", null);
        }

        if (!key.Enabled)
        {
            return Error(403, "Forbidden", "KeyDisabled", $"Operation {action} is not allowed on a disabled key.", null);
        }

        var body = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
        var alg = body?["alg"]?.GetValue<string>();
        var value = Base64Url.DecodeFromChars(body?["value"]?.GetValue<string>() ?? "");
        var expectedAlg = key.Rsa is null ? "A256KW" : "RSA-OAEP-256";
        if (alg != expectedAlg)
        {
            return Error(400, "BadParameter", null, $"Algorithm {alg} is not supported for key type {key.KeyType}", null);
        }

        byte[] result;
        try
        {
            result = (action, key.Rsa) switch
            {
                ("wrapkey", { } rsa) => rsa.Encrypt(value, RSAEncryptionPadding.OaepSHA256),
                ("unwrapkey", { } rsa) => rsa.Decrypt(value, RSAEncryptionPadding.OaepSHA256),
                ("wrapkey", null) => AesKeyWrap.Wrap(key.Aes!, value),
                _ => AesKeyWrap.Unwrap(key.Aes!, value) ?? throw new CryptographicException("AES key wrap integrity check failed"),
            };
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            return Error(400, "BadParameter", null, "The parameter is incorrect.", null);
        }

        if (fault is { Action: FaultAction.CorruptResult })
        {
            result[^1] ^= 0x01;
        }
        else if (fault is { Action: FaultAction.TruncateResult })
        {
            result = result[..(result.Length / 2)];
        }

        return Results.Json(new JsonObject { ["kid"] = kid, ["value"] = Base64Url.EncodeToString(result) });
    }

    private bool Authorized(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.Ordinal)
            && _tokens.TryGetValue(header["Bearer ".Length..], out var expires) && expires > DateTimeOffset.UtcNow;
    }

    /// <summary>Entra ID v2.0 token endpoint, client-credentials grant (client assertion, secret or certificate).</summary>
    private async Task<IResult> TokenAsync(HttpContext context, string tenant)
    {
        var form = await context.Request.ReadFormAsync(context.RequestAborted);
        var fields = form.ToDictionary(f => f.Key, f => f.Value.ToString(), StringComparer.Ordinal);
        _tokenRequests.Enqueue(fields);
        var fault = Faults.Take("token");
        if (fault is { Action: FaultAction.Error })
        {
            return TokenError(fault.Status, fault.Code ?? "temporarily_unavailable", "AADSTS50196: injected fault");
        }

        if (tenant != TenantId)
        {
            return TokenError(400, "invalid_request", $"AADSTS90002: Tenant '{tenant}' not found.");
        }

        if (fields.GetValueOrDefault("grant_type") != "client_credentials" || fields.GetValueOrDefault("client_id") != ClientId)
        {
            return TokenError(400, "unauthorized_client", "AADSTS700016: Application not found in the directory.");
        }

        var authenticated = fields.TryGetValue("client_secret", out var secret)
            ? secret == ClientSecret
            : fields.GetValueOrDefault("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                && fields.TryGetValue("client_assertion", out var assertion) && AssertionIsValid(assertion);
        if (!authenticated)
        {
            return TokenError(401, "invalid_client", "AADSTS7000215: Invalid client secret or assertion provided.");
        }

        return Results.Json(new JsonObject
        {
            ["token_type"] = "Bearer",
            ["expires_in"] = (long)TokenLifetime.TotalSeconds,
            ["ext_expires_in"] = (long)TokenLifetime.TotalSeconds,
            ["access_token"] = Issue(),
        });
    }

    /// <summary>The workload identity's federated token as is, or a JWT signed with the registered client certificate.</summary>
    private bool AssertionIsValid(string assertion)
    {
        if (assertion == FederatedToken)
        {
            return true;
        }

        if (ClientCertificate is null)
        {
            return false;
        }

        var parts = assertion.Split('.');
        if (parts.Length != 3)
        {
            return false;
        }

        using var rsa = ClientCertificate.GetRSAPublicKey();
        var signed = System.Text.Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]);
        var signature = Base64Url.DecodeFromChars(parts[2]);
        var payload = JsonNode.Parse(Base64Url.DecodeFromChars(parts[1]));
        var header = JsonNode.Parse(Base64Url.DecodeFromChars(parts[0]));
        var algorithm = header?["alg"]?.GetValue<string>();
        var padding = algorithm == "PS256" ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1;
        return rsa is not null
            && rsa.VerifyData(signed, signature, HashAlgorithmName.SHA256, padding)
            && payload?["iss"]?.GetValue<string>() == ClientId
            && payload?["sub"]?.GetValue<string>() == ClientId;
    }

    /// <summary>The App Service / Container Apps managed-identity endpoint (IDENTITY_ENDPOINT, api-version 2019-08-01).</summary>
    private IResult ManagedIdentityToken(HttpContext context)
    {
        _tokenRequests.Enqueue(context.Request.Query.ToDictionary(q => q.Key, q => q.Value.ToString(), StringComparer.Ordinal));
        if (context.Request.Headers["X-IDENTITY-HEADER"] != ManagedIdentityHeader)
        {
            return Results.Json(new JsonObject { ["error"] = "invalid_request", ["error_description"] = "missing X-IDENTITY-HEADER" }, statusCode: 400);
        }

        var expires = DateTimeOffset.UtcNow + TokenLifetime;
        return Results.Json(new JsonObject
        {
            ["access_token"] = Issue(),
            ["expires_on"] = expires.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["resource"] = context.Request.Query["resource"].ToString(),
            ["token_type"] = "Bearer",
            ["client_id"] = context.Request.Query["client_id"].ToString(),
        });
    }

    private string Issue()
    {
        var token = "fake-at-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        _tokens[token] = DateTimeOffset.UtcNow + TokenLifetime;
        return token;
    }

    private static IResult TokenError(int status, string error, string description) =>
        Results.Json(new JsonObject
        {
            ["error"] = error,
            ["error_description"] = description,
            ["error_codes"] = new JsonArray(int.Parse(description[6..description.IndexOf(':', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture)),
            ["trace_id"] = Guid.NewGuid().ToString(),
            ["correlation_id"] = Guid.NewGuid().ToString(),
        }, statusCode: status);

    private static ErrorResult Error(int status, string code, string? innerCode, string message, string? retryAfter)
    {
        var error = new JsonObject { ["code"] = code, ["message"] = message };
        if (innerCode is not null)
        {
            error["innererror"] = new JsonObject { ["code"] = innerCode };
        }

        return new ErrorResult(status, new JsonObject { ["error"] = error }, retryAfter);
    }

    private sealed class ErrorResult(int status, JsonObject body, string? retryAfter) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = status;
            if (retryAfter is not null)
            {
                httpContext.Response.Headers.RetryAfter = retryAfter;
            }

            return httpContext.Response.WriteAsJsonAsync(body, (JsonSerializerOptions?)null, httpContext.RequestAborted);
        }
    }

    private sealed class FakeKeyVersion(string version, string keyType, RSA? rsa, byte[]? aes)
    {
        public string Version { get; } = version;

        public string KeyType { get; } = keyType;

        public RSA? Rsa { get; } = rsa;

        public byte[]? Aes { get; } = aes;

        public bool Enabled { get; set; } = true;
    }
}
