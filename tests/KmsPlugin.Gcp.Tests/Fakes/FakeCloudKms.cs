using System.Buffers.Binary;
using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Globalization;
using System.IO.Hashing;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using KmsPlugin.TestSupport;
using Microsoft.AspNetCore.Http;

namespace KmsPlugin.Gcp.Tests.Fakes;

/// <summary>
/// A wire-level fake of Cloud KMS REST v1 (GET cryptoKey, POST cryptoKeyVersion:encrypt, POST cryptoKey:decrypt; proto3
/// JSON with int64 as strings; errors as <c>{"error":{"code","message","status"}}</c>) and of the token endpoints the
/// credentials use (Google OAuth2 JWT-bearer for service-account keys; STS token exchange for Workload Identity
/// Federation), on loopback over TLS. It does real AES-256-GCM with the request's AAD per version, checks and
/// returns every CRC32C field, checks the bearer token, and applies a <see cref="FaultPlan"/>. It holds
/// <see cref="CryptoKey"/>, and others on the same key ring made with <see cref="AddCryptoKey"/>.
/// </summary>
internal sealed class FakeCloudKms : IAsyncDisposable
{
    public const string CryptoKey = "projects/kms-test/locations/global/keyRings/k8s/cryptoKeys/kek";
    public const string Audience = "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/k8s/providers/cluster";
    public const string ServiceAccountEmail = "kms-plugin@kms-test.iam.gserviceaccount.com";

    private readonly Dictionary<string, FakeCryptoKey> _keys = new(StringComparer.Ordinal) { [CryptoKey] = new() };
    private readonly Lock _lock = new();
    private readonly ConcurrentDictionary<string, DateTimeOffset> _tokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _requests = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<IReadOnlyDictionary<string, string>> _tokenRequests = new();
    private readonly ConcurrentQueue<string> _unknownRequests = new();
    private LoopbackWebServer? _server;

    public Uri BaseUri => _server!.BaseUri;

    public string Endpoint => BaseUri.ToString().TrimEnd('/');

    public FaultPlan Faults { get; } = new();

    /// <summary>The Kubernetes service-account token the STS exchange accepts as subject_token.</summary>
    public string SubjectToken { get; set; } = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZS1zeXN0ZW06a21zIn0.c2ln";

    /// <summary>The public key of the service account whose JWT assertions the OAuth2 endpoint accepts.</summary>
    public RSA? ServiceAccountKey { get; set; }

    /// <summary>When set, encrypt answers verifiedPlaintextCrc32c=false, as if the plaintext checksum did not arrive.</summary>
    public bool ReportUnverified { get; set; }

    public IReadOnlyList<IReadOnlyDictionary<string, string>> TokenRequests => [.. _tokenRequests];

    public IReadOnlyList<string> UnknownRequests => [.. _unknownRequests];

    public static async Task<FakeCloudKms> StartAsync()
    {
        var fake = new FakeCloudKms();
        fake._server = await LoopbackWebServer.StartAsync(fake.Map, LoopbackTls.Shared);
        return fake;
    }

    public int Requests(string operation) => _requests.GetValueOrDefault(operation);

    /// <summary>Encrypt requests made with <paramref name="version"/> of <see cref="CryptoKey"/> (whether they named it or it was primary).</summary>
    public int Encrypts(int version) => _requests.GetValueOrDefault($"encrypt {CryptoKey}/{version}");

    /// <summary>
    /// Adds a version (numbered from 1) to <see cref="CryptoKey"/>; <paramref name="makePrimary"/> moves the primary to
    /// it, as a rotation does.
    /// </summary>
    public int AddVersion(bool makePrimary = true)
    {
        lock (_lock)
        {
            return _keys[CryptoKey].AddVersion(makePrimary);
        }
    }

    /// <summary>Creates another CryptoKey on the same key ring with one version, its primary; returns its resource name.</summary>
    public string AddCryptoKey(string id)
    {
        var name = CryptoKey[..(CryptoKey.LastIndexOf('/') + 1)] + id;
        lock (_lock)
        {
            var key = new FakeCryptoKey();
            key.AddVersion(makePrimary: true);
            _keys.Add(name, key);
        }

        return name;
    }

    /// <summary><c>cryptoKeys.updatePrimaryVersion</c>: makes an existing version primary (e.g. rolling a rotation back).</summary>
    public void SetPrimary(int version)
    {
        lock (_lock)
        {
            var key = _keys[CryptoKey];
            key.Primary = key.Versions.Single(v => v.Number == version).Number;
        }
    }

    public void SetState(int version, string state)
    {
        lock (_lock)
        {
            _keys[CryptoKey].Versions[version - 1].State = state;
        }
    }

    public void RevokeTokens() => _tokens.Clear();

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    private void Map(WebApplication app)
    {
        app.MapGet("/v1/{**resource}", (HttpContext context, string resource) => Get(context, resource));
        app.MapPost("/v1/{**resource}", (HttpContext context, string resource) => PostAsync(context, resource));
        app.MapPost("/oauth2/token", (Delegate)OAuthTokenAsync);
        app.MapPost("/sts/v1/token", (Delegate)StsTokenAsync);
        app.MapFallback((HttpContext context) =>
        {
            _unknownRequests.Enqueue($"{context.Request.Method} {context.Request.Path}");
            return Results.NotFound();
        });
    }

    private IResult Get(HttpContext context, string resource)
    {
        var problem = Count(context, "get");
        if (problem is not null)
        {
            return problem;
        }

        if (Faults.Take("get") is { Action: FaultAction.Error } fault)
        {
            return Error(fault.Status, fault.Code ?? "UNAVAILABLE", "injected fault", fault.RetryAfter);
        }

        lock (_lock)
        {
            if (!_keys.TryGetValue(resource, out var cryptoKey))
            {
                return Error(404, "NOT_FOUND", $"{resource} not found.", null);
            }

            var primary = cryptoKey.Versions.FirstOrDefault(v => v.Number == cryptoKey.Primary);
            var key = new JsonObject { ["name"] = resource, ["purpose"] = "ENCRYPT_DECRYPT", ["createTime"] = "2024-01-01T00:00:00Z" };
            if (primary is not null)
            {
                key["primary"] = new JsonObject
                {
                    ["name"] = $"{resource}/cryptoKeyVersions/{primary.Number}",
                    ["state"] = primary.State,
                    ["protectionLevel"] = "HSM",
                    ["algorithm"] = "GOOGLE_SYMMETRIC_ENCRYPTION",
                };
            }

            return Results.Json(key);
        }
    }

    private async Task<IResult> PostAsync(HttpContext context, string resource)
    {
        var colon = resource.LastIndexOf(':');
        var method = colon < 0 ? "" : resource[(colon + 1)..];
        var target = colon < 0 ? resource : resource[..colon];
        var problem = Count(context, method);
        if (problem is not null)
        {
            return problem;
        }

        var fault = Faults.Take(method);
        if (fault is { Action: FaultAction.Delay })
        {
            await Task.Delay(fault.Delay, context.RequestAborted);
            fault = null;
        }

        if (fault is { Action: FaultAction.Error })
        {
            return Error(fault.Status, fault.Code ?? "UNAVAILABLE", "injected fault", fault.RetryAfter);
        }

        var body = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted) as JsonObject;
        if (body is null)
        {
            return Error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.", null);
        }

        var aad = Bytes(body, "additionalAuthenticatedData");
        if (!ChecksumMatches(body, "additionalAuthenticatedDataCrc32c", aad))
        {
            return Error(400, "INVALID_ARGUMENT", "The checksum in field additional_authenticated_data_crc32c did not match the data in field additional_authenticated_data.", null);
        }

        return method switch
        {
            "encrypt" => Encrypt(target, body, aad, fault),
            "decrypt" => Decrypt(target, body, aad, fault),
            _ => Error(404, "NOT_FOUND", $"{resource} not found.", null),
        };
    }

    private IResult Encrypt(string target, JsonObject body, byte[] aad, Fault? fault)
    {
        // {cryptoKey} (its primary version) or {cryptoKey}/cryptoKeyVersions/{n}.
        var versionAt = target.IndexOf("/cryptoKeyVersions/", StringComparison.Ordinal);
        var keyName = versionAt < 0 ? target : target[..versionAt];
        FakeVersion? version;
        lock (_lock)
        {
            var key = _keys.GetValueOrDefault(keyName);
            var number = versionAt < 0 ? key?.Primary
                : int.TryParse(target.AsSpan(versionAt + "/cryptoKeyVersions/".Length), CultureInfo.InvariantCulture, out var n) ? n : -1;
            version = key?.Versions.FirstOrDefault(v => v.Number == number);
        }

        if (version is null)
        {
            return Error(404, "NOT_FOUND", $"{target} not found.", null);
        }

        _requests.AddOrUpdate($"encrypt {keyName}/{version.Number}", 1, (_, n) => n + 1);

        if (version.State != "ENABLED")
        {
            return Error(400, "FAILED_PRECONDITION", $"{keyName}/cryptoKeyVersions/{version.Number} is not enabled, current state is: {version.State}.", null);
        }

        var plaintext = Bytes(body, "plaintext");
        if (!ChecksumMatches(body, "plaintextCrc32c", plaintext))
        {
            return Error(400, "INVALID_ARGUMENT", "The checksum in field plaintext_crc32c did not match the data in field plaintext.", null);
        }

        // The fake's ciphertext: version(4) ‖ nonce(12) ‖ AES-256-GCM ciphertext ‖ tag(16), AAD as given.
        var ciphertext = new byte[4 + 12 + plaintext.Length + 16];
        BinaryPrimitives.WriteInt32BigEndian(ciphertext, version.Number);
        RandomNumberGenerator.Fill(ciphertext.AsSpan(4, 12));
        using (var aes = new AesGcm(version.Key, 16))
        {
            aes.Encrypt(ciphertext.AsSpan(4, 12), plaintext, ciphertext.AsSpan(16, plaintext.Length), ciphertext.AsSpan(16 + plaintext.Length), aad);
        }

        var crc = Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, ciphertext);
        if (fault is { Action: FaultAction.CorruptResult })
        {
            crc ^= 1;
        }

        return Results.Json(new JsonObject
        {
            ["name"] = $"{keyName}/cryptoKeyVersions/{version.Number}",
            ["ciphertext"] = Convert.ToBase64String(ciphertext),
            ["ciphertextCrc32c"] = crc.ToString(CultureInfo.InvariantCulture),
            ["verifiedPlaintextCrc32c"] = !ReportUnverified && body.ContainsKey("plaintextCrc32c"),
            ["verifiedAdditionalAuthenticatedDataCrc32c"] = body.ContainsKey("additionalAuthenticatedDataCrc32c"),
            ["protectionLevel"] = "HSM",
        });
    }

    private IResult Decrypt(string keyName, JsonObject body, byte[] aad, Fault? fault)
    {
        var ciphertext = Bytes(body, "ciphertext");
        if (!ChecksumMatches(body, "ciphertextCrc32c", ciphertext))
        {
            return Error(400, "INVALID_ARGUMENT", "The checksum in field ciphertext_crc32c did not match the data in field ciphertext.", null);
        }

        FakeVersion? version;
        bool usedPrimary;
        lock (_lock)
        {
            if (!_keys.TryGetValue(keyName, out var key))
            {
                return Error(404, "NOT_FOUND", $"{keyName} not found.", null);
            }

            var number = ciphertext.Length >= 4 ? BinaryPrimitives.ReadInt32BigEndian(ciphertext) : -1;
            version = key.Versions.FirstOrDefault(v => v.Number == number);
            usedPrimary = number == key.Primary;
        }

        if (version is null || ciphertext.Length < 4 + 12 + 16)
        {
            return Error(400, "INVALID_ARGUMENT", "Decryption failed: the ciphertext is invalid.", null);
        }

        if (version.State != "ENABLED")
        {
            return Error(400, "FAILED_PRECONDITION", $"{keyName}/cryptoKeyVersions/{version.Number} is not enabled, current state is: {version.State}.", null);
        }

        var plaintext = new byte[ciphertext.Length - 32];
        try
        {
            using var aes = new AesGcm(version.Key, 16);
            aes.Decrypt(ciphertext.AsSpan(4, 12), ciphertext.AsSpan(16, plaintext.Length), ciphertext.AsSpan(16 + plaintext.Length), plaintext, aad);
        }
        catch (CryptographicException)
        {
            return Error(400, "INVALID_ARGUMENT", "Decryption failed: verify that 'name' refers to the correct CryptoKey.", null);
        }

        var crc = Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, plaintext);
        if (fault is { Action: FaultAction.CorruptResult })
        {
            crc ^= 1;
        }
        else if (fault is { Action: FaultAction.TruncateResult })
        {
            plaintext = plaintext[..(plaintext.Length / 2)]; // the checksum still describes the whole plaintext
        }

        return Results.Json(new JsonObject
        {
            ["plaintext"] = Convert.ToBase64String(plaintext),
            ["plaintextCrc32c"] = crc.ToString(CultureInfo.InvariantCulture),
            ["usedPrimary"] = usedPrimary,
            ["protectionLevel"] = "HSM",
        });
    }

    /// <summary>Google OAuth2 token endpoint, JWT-bearer grant (RFC 7523) signed with a service-account key.</summary>
    private async Task<IResult> OAuthTokenAsync(HttpContext context)
    {
        var form = await Form(context);
        if (Faults.Take("token") is { Action: FaultAction.Error } fault)
        {
            return TokenError(fault.Status, fault.Code ?? "temporarily_unavailable");
        }

        if (form.GetValueOrDefault("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || ServiceAccountKey is null
            || !JwtIsSignedBy(form.GetValueOrDefault("assertion") ?? "", ServiceAccountKey, out var claims)
            || claims?["iss"]?.GetValue<string>() != ServiceAccountEmail
            || claims?["scope"]?.GetValue<string>()?.Contains("https://www.googleapis.com/auth/cloudkms", StringComparison.Ordinal) != true)
        {
            return TokenError(400, "invalid_grant");
        }

        return Results.Json(new JsonObject { ["access_token"] = Issue(), ["expires_in"] = 3599, ["token_type"] = "Bearer" });
    }

    /// <summary>Google STS token exchange (RFC 8693) for Workload Identity Federation.</summary>
    private async Task<IResult> StsTokenAsync(HttpContext context)
    {
        var form = await Form(context);
        if (Faults.Take("token") is { Action: FaultAction.Error } fault)
        {
            return TokenError(fault.Status, fault.Code ?? "temporarily_unavailable");
        }

        if (form.GetValueOrDefault("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange"
            || form.GetValueOrDefault("audience") != Audience
            || form.GetValueOrDefault("subject_token") != SubjectToken
            || form.GetValueOrDefault("subject_token_type") != "urn:ietf:params:oauth:token-type:jwt")
        {
            return TokenError(400, "invalid_grant");
        }

        return Results.Json(new JsonObject
        {
            ["access_token"] = Issue(),
            ["issued_token_type"] = "urn:ietf:params:oauth:token-type:access_token",
            ["token_type"] = "Bearer",
            ["expires_in"] = 3599,
        });
    }

    private async Task<Dictionary<string, string>> Form(HttpContext context)
    {
        var form = await context.Request.ReadFormAsync(context.RequestAborted);
        var fields = form.ToDictionary(f => f.Key, f => f.Value.ToString(), StringComparer.Ordinal);
        fields["(path)"] = context.Request.Path;
        _tokenRequests.Enqueue(fields);
        return fields;
    }

    private static bool JwtIsSignedBy(string jwt, RSA key, out JsonNode? claims)
    {
        claims = null;
        var parts = jwt.Split('.');
        if (parts.Length != 3)
        {
            return false;
        }

        claims = JsonNode.Parse(Base64Url.DecodeFromChars(parts[1]));
        return key.VerifyData(Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]), Base64Url.DecodeFromChars(parts[2]),
            HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
    }

    /// <summary>Counts the request and checks its bearer token: null when it may proceed.</summary>
    private ErrorResult? Count(HttpContext context, string operation)
    {
        _requests.AddOrUpdate(operation, 1, (_, n) => n + 1);
        var header = context.Request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.Ordinal) && _tokens.TryGetValue(header["Bearer ".Length..], out var expires)
            && expires > DateTimeOffset.UtcNow
            ? null
            : Error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token.", null);
    }

    private string Issue()
    {
        var token = "ya29.fake-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        _tokens[token] = DateTimeOffset.UtcNow.AddHours(1);
        return token;
    }

    private static byte[] Bytes(JsonObject body, string field) =>
        body[field]?.GetValue<string>() is { } text ? Convert.FromBase64String(text) : [];

    /// <summary>A checksum field, when present, must be the CRC32C of its data (int64 as a decimal string, proto3 JSON).</summary>
    private static bool ChecksumMatches(JsonObject body, string field, byte[] data) =>
        body[field] is not { } value
        || (ulong.TryParse(value.GetValue<string>(), NumberStyles.None, CultureInfo.InvariantCulture, out var crc)
            && crc == Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, data));

    private static IResult TokenError(int status, string error) =>
        Results.Json(new JsonObject { ["error"] = error, ["error_description"] = "the fake token endpoint refused the request" }, statusCode: status);

    private static ErrorResult Error(int status, string code, string message, string? retryAfter) =>
        new(status, new JsonObject { ["error"] = new JsonObject { ["code"] = status, ["message"] = message, ["status"] = code } }, retryAfter);

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

    /// <summary>A CryptoKey: its versions (numbered from 1, each with its own AES key) and which one is primary.</summary>
    private sealed class FakeCryptoKey
    {
        public List<FakeVersion> Versions { get; } = [];

        public int Primary { get; set; }

        public int AddVersion(bool makePrimary)
        {
            var version = new FakeVersion(Versions.Count + 1, RandomNumberGenerator.GetBytes(32));
            Versions.Add(version);
            if (makePrimary || Primary == 0)
            {
                Primary = version.Number;
            }

            return version.Number;
        }
    }

    private sealed class FakeVersion(int number, byte[] key)
    {
        public int Number { get; } = number;

        public byte[] Key { get; } = key;

        public string State { get; set; } = "ENABLED";
    }
}
