using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Aws.Tests;

/// <summary>
/// A wire-level fake of AWS KMS (JSON 1.1: <c>POST /</c>, <c>X-Amz-Target: TrentService.Encrypt|Decrypt|DescribeKey</c>,
/// errors as <c>{"__type": …}</c>), STS <c>AssumeRoleWithWebIdentity</c> (Query protocol, XML) and the EKS Pod Identity
/// agent's credential endpoint, all on one loopback Kestrel port. It verifies every KMS request's SigV4 signature
/// against the credentials it issued, encrypts for real (AES-256-GCM with the encryption context as AAD, so tampering
/// and context mismatches fail like KMS), keeps old key material after rotation, and injects faults on request.
/// </summary>
public sealed class FakeAwsKms : IAsyncDisposable
{
    public const string Region = "us-east-1";
    public const string Account = "111122223333";
    public const string StaticAccessKeyId = "AKIAFAKESTATIC000001";
    public const string StaticSecretKey = "fake-static-secret-key-for-tests-only";
    private const byte BlobMagic = 0xFA;
    private const int KeyIdChars = 36;

    private readonly ConcurrentDictionary<string, FakeKmsKey> _keys = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _aliases = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (string Secret, string? SessionToken)> _credentials = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _calls = new(StringComparer.Ordinal);
    private LoopbackWebServer? _server;
    private int _aborted;

    private FakeAwsKms()
    {
        _credentials[StaticAccessKeyId] = (StaticSecretKey, null);
    }

    public Uri Endpoint => _server!.BaseUri;

    /// <summary>JWTs STS accepts for AssumeRoleWithWebIdentity.</summary>
    public ConcurrentDictionary<string, bool> AcceptedWebIdentityTokens { get; } = new(StringComparer.Ordinal);

    /// <summary>Every WebIdentityToken STS received, in order.</summary>
    public ConcurrentQueue<string> WebIdentityTokensSeen { get; } = new();

    /// <summary>How long STS-issued credentials last; under the SDK's 5-minute preemption every call refreshes them.</summary>
    public TimeSpan StsCredentialLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How long STS takes to answer (until the client gives up first).</summary>
    public TimeSpan StsLatency { get; set; }

    /// <summary>The Authorization value the Pod Identity endpoint accepts (the agent token file's content).</summary>
    public string? PodIdentityToken { get; set; }

    /// <summary>Encryption contexts of the KMS Encrypt/Decrypt calls, in order.</summary>
    public ConcurrentQueue<(string Operation, Dictionary<string, string> Context, string KeyId)> Requests { get; } = new();

    /// <summary>The fault currently injected into KMS calls, if any.</summary>
    public FakeFault? Fault { get; set; }

    /// <summary>Requests the client abandoned while the fake was still working on them (deadline tests).</summary>
    public int Aborted => Volatile.Read(ref _aborted);

    public static async Task<FakeAwsKms> StartAsync()
    {
        var fake = new FakeAwsKms();
        fake._server = await LoopbackWebServer.StartAsync(app =>
        {
            app.MapPost("/", fake.HandleAsync);
            app.MapGet("/pod-identity", fake.HandlePodIdentity);
        });
        return fake;
    }

    /// <summary>Every secret access key and session token the fake has handed out (for checking they never reach a log).</summary>
    public IEnumerable<string> IssuedSecrets =>
        _credentials.Values.SelectMany(c => c.SessionToken is null ? new[] { c.Secret } : [c.Secret, c.SessionToken]);

    /// <summary>Calls received per operation (<c>Encrypt</c>, <c>Decrypt</c>, <c>DescribeKey</c>, <c>AssumeRoleWithWebIdentity</c>, <c>PodIdentity</c>).</summary>
    public int Calls(string operation) => _calls.TryGetValue(operation, out var n) ? n : 0;

    public FakeKmsKey CreateKey(string? alias = null, string keySpec = "SYMMETRIC_DEFAULT")
    {
        var id = Guid.NewGuid().ToString();
        var key = new FakeKmsKey(id, $"arn:aws:kms:{Region}:{Account}:key/{id}", keySpec);
        _keys[id] = key;
        if (alias is not null)
        {
            _aliases[alias] = id;
        }

        return key;
    }

    /// <summary>Re-points an alias (UpdateAlias).</summary>
    public void PointAlias(string alias, FakeKmsKey key) => _aliases[alias] = key.Id;

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
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var body = await reader.ReadToEndAsync(context.RequestAborted);
        var target = context.Request.Headers["X-Amz-Target"].ToString();
        if (target.Length == 0)
        {
            await HandleStsAsync(context, body);
            return;
        }

        var operation = target.StartsWith("TrentService.", StringComparison.Ordinal) ? target["TrentService.".Length..] : target;
        Count(operation);
        if (context.Request.ContentType != "application/x-amz-json-1.1")
        {
            await ErrorAsync(context, 400, "SerializationException", $"unexpected content type {context.Request.ContentType}");
            return;
        }

        if (SigV4.Verify(context.Request, body, service: "kms", Region, LookupSecret) is { } signatureProblem)
        {
            await ErrorAsync(context, 400, signatureProblem.Code, signatureProblem.Message);
            return;
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

            switch (fault.Kind)
            {
                case FaultKind.InternalError:
                    await ErrorAsync(context, 500, "KMSInternalException", "injected internal error");
                    return;
                case FaultKind.ServiceUnavailable:
                    context.Response.StatusCode = 503;
                    await context.Response.WriteAsync("<html>Service Unavailable</html>");
                    return;
                case FaultKind.Throttling:
                    await ErrorAsync(context, 400, "ThrottlingException", "Rate exceeded");
                    return;
                case FaultKind.AccessDenied:
                    await ErrorAsync(context, 400, "AccessDeniedException",
                        $"User: arn:aws:sts::{Account}:assumed-role/kms-plugin/k8s is not authorized to perform: kms:{operation}");
                    return;
                case FaultKind.Disabled:
                    await ErrorAsync(context, 400, "DisabledException", "key is disabled");
                    return;
                case FaultKind.NotFound:
                    await ErrorAsync(context, 400, "NotFoundException", "Key does not exist");
                    return;
                case FaultKind.InvalidState:
                    await ErrorAsync(context, 400, "KMSInvalidStateException", "key is pending deletion");
                    return;
                case FaultKind.Malformed:
                    context.Response.ContentType = "application/x-amz-json-1.1";
                    await context.Response.WriteAsync("{\"CiphertextBlob\": \"!!not base64");
                    return;
            }
        }

        using var document = JsonDocument.Parse(body);
        var request = document.RootElement;
        switch (operation)
        {
            case "Encrypt":
                await EncryptAsync(context, request);
                break;
            case "Decrypt":
                await DecryptAsync(context, request, hit);
                break;
            case "DescribeKey":
                await DescribeKeyAsync(context, request);
                break;
            default:
                await ErrorAsync(context, 400, "UnknownOperationException", operation);
                break;
        }
    }

    private async Task EncryptAsync(HttpContext context, JsonElement request)
    {
        var key = Resolve(request.GetProperty("KeyId").GetString()!);
        if (key is null)
        {
            await ErrorAsync(context, 400, "NotFoundException", "Key does not exist");
            return;
        }

        if (!key.Enabled)
        {
            await ErrorAsync(context, 400, "DisabledException", $"{key.Arn} is disabled.");
            return;
        }

        var encryptionContext = ReadContext(request);
        Requests.Enqueue(("Encrypt", encryptionContext, request.GetProperty("KeyId").GetString()!));
        var plaintext = request.GetProperty("Plaintext").GetBytesFromBase64();
        var material = key.Materials.Count - 1;
        var blob = new byte[1 + KeyIdChars + 1 + 12 + plaintext.Length + 16];
        blob[0] = BlobMagic;
        Encoding.ASCII.GetBytes(key.Id, blob.AsSpan(1, KeyIdChars));
        blob[1 + KeyIdChars] = (byte)material;
        var nonce = blob.AsSpan(2 + KeyIdChars, 12);
        RandomNumberGenerator.Fill(nonce);
        using (var aes = new AesGcm(key.Materials[material], 16))
        {
            aes.Encrypt(nonce, plaintext, blob.AsSpan(14 + KeyIdChars, plaintext.Length), blob.AsSpan(14 + KeyIdChars + plaintext.Length), Aad(encryptionContext));
        }

        await JsonAsync(context, new JsonObject
        {
            ["CiphertextBlob"] = Convert.ToBase64String(blob),
            ["KeyId"] = key.Arn,
            ["EncryptionAlgorithm"] = "SYMMETRIC_DEFAULT",
        });
    }

    private async Task DecryptAsync(HttpContext context, JsonElement request, FaultKind? fault)
    {
        var blob = request.GetProperty("CiphertextBlob").GetBytesFromBase64();
        if (fault == FaultKind.TamperCiphertext && blob.Length > 0)
        {
            blob[^1] ^= 0x01; // storage corruption between Encrypt and Decrypt
        }

        var encryptionContext = ReadContext(request);
        var requestedKeyId = request.TryGetProperty("KeyId", out var k) ? k.GetString() : null;
        Requests.Enqueue(("Decrypt", encryptionContext, requestedKeyId ?? ""));
        if (blob.Length < 1 + KeyIdChars + 1 + 12 + 16 || blob[0] != BlobMagic || !_keys.TryGetValue(Encoding.ASCII.GetString(blob, 1, KeyIdChars), out var key))
        {
            await ErrorAsync(context, 400, "InvalidCiphertextException", "");
            return;
        }

        if (requestedKeyId is not null && Resolve(requestedKeyId) is { } requested && requested.Id != key.Id)
        {
            await ErrorAsync(context, 400, "IncorrectKeyException", "The key ID in the request does not identify a KMS key that can perform this operation.");
            return;
        }

        if (!key.Enabled)
        {
            await ErrorAsync(context, 400, "DisabledException", $"{key.Arn} is disabled.");
            return;
        }

        var material = blob[1 + KeyIdChars];
        var plaintext = new byte[blob.Length - (14 + KeyIdChars) - 16];
        try
        {
            using var aes = new AesGcm(key.Materials[material], 16);
            aes.Decrypt(blob.AsSpan(2 + KeyIdChars, 12), blob.AsSpan(14 + KeyIdChars, plaintext.Length), blob.AsSpan(blob.Length - 16), plaintext, Aad(encryptionContext));
        }
        catch (CryptographicException)
        {
            await ErrorAsync(context, 400, "InvalidCiphertextException", "");
            return;
        }

        if (fault == FaultKind.CorruptPlaintext)
        {
            plaintext[0] ^= 0xFF;
        }

        await JsonAsync(context, new JsonObject
        {
            ["KeyId"] = key.Arn,
            ["Plaintext"] = Convert.ToBase64String(plaintext),
            ["EncryptionAlgorithm"] = "SYMMETRIC_DEFAULT",
        });
    }

    private async Task DescribeKeyAsync(HttpContext context, JsonElement request)
    {
        var key = Resolve(request.GetProperty("KeyId").GetString()!);
        if (key is null)
        {
            await ErrorAsync(context, 400, "NotFoundException", $"Invalid keyId {request.GetProperty("KeyId").GetString()}");
            return;
        }

        await JsonAsync(context, new JsonObject
        {
            ["KeyMetadata"] = new JsonObject
            {
                ["AWSAccountId"] = Account,
                ["Arn"] = key.Arn,
                ["KeyId"] = key.Id,
                ["CreationDate"] = 1.7e9,
                ["Enabled"] = key.Enabled,
                ["KeyState"] = key.Enabled ? "Enabled" : "Disabled",
                ["KeyManager"] = "CUSTOMER",
                ["Origin"] = "AWS_KMS",
                ["KeySpec"] = key.KeySpec,
                ["CustomerMasterKeySpec"] = key.KeySpec,
                ["KeyUsage"] = key.KeySpec == "SYMMETRIC_DEFAULT" ? "ENCRYPT_DECRYPT" : "SIGN_VERIFY",
                ["EncryptionAlgorithms"] = new JsonArray("SYMMETRIC_DEFAULT"),
                ["MultiRegion"] = false,
            },
        });
    }

    /// <summary>STS Query protocol: form-encoded request, XML response (STS API reference, AssumeRoleWithWebIdentity).</summary>
    private async Task HandleStsAsync(HttpContext context, string body)
    {
        var form = body.Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2))
            .ToDictionary(p => Uri.UnescapeDataString(p[0].Replace('+', ' ')), p => p.Length > 1 ? Uri.UnescapeDataString(p[1].Replace('+', ' ')) : "", StringComparer.Ordinal);
        var action = form.GetValueOrDefault("Action");
        Count(action ?? "?");
        if (action != "AssumeRoleWithWebIdentity")
        {
            await StsErrorAsync(context, "InvalidAction", $"unsupported action {action}");
            return;
        }

        if (StsLatency > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(StsLatency, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        var token = form.GetValueOrDefault("WebIdentityToken") ?? "";
        WebIdentityTokensSeen.Enqueue(token);
        if (!AcceptedWebIdentityTokens.ContainsKey(token))
        {
            await StsErrorAsync(context, "InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider");
            return;
        }

        var (accessKeyId, secret, session) = Issue();
        var expiration = DateTime.UtcNow + StsCredentialLifetime;
        context.Response.ContentType = "text/xml";
        await context.Response.WriteAsync($"""
            <AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
              <AssumeRoleWithWebIdentityResult>
                <SubjectFromWebIdentityToken>system:serviceaccount:kube-system:kms-plugin</SubjectFromWebIdentityToken>
                <Audience>sts.amazonaws.com</Audience>
                <AssumedRoleUser>
                  <Arn>arn:aws:sts::{Account}:assumed-role/kms-plugin/{form.GetValueOrDefault("RoleSessionName")}</Arn>
                  <AssumedRoleId>AROAFAKE:{form.GetValueOrDefault("RoleSessionName")}</AssumedRoleId>
                </AssumedRoleUser>
                <Credentials>
                  <AccessKeyId>{accessKeyId}</AccessKeyId>
                  <SecretAccessKey>{secret}</SecretAccessKey>
                  <SessionToken>{session}</SessionToken>
                  <Expiration>{expiration.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)}</Expiration>
                </Credentials>
                <Provider>oidc.eks.{Region}.amazonaws.com/id/FAKE</Provider>
              </AssumeRoleWithWebIdentityResult>
              <ResponseMetadata><RequestId>{Guid.NewGuid()}</RequestId></ResponseMetadata>
            </AssumeRoleWithWebIdentityResponse>
            """);
    }

    /// <summary>The EKS Pod Identity agent (AWS_CONTAINER_CREDENTIALS_FULL_URI), authorised by the token file's content.</summary>
    private async Task HandlePodIdentity(HttpContext context)
    {
        Count("PodIdentity");
        if (PodIdentityToken is null || context.Request.Headers.Authorization.ToString() != PodIdentityToken)
        {
            context.Response.StatusCode = 401;
            return;
        }

        var (accessKeyId, secret, session) = Issue();
        await JsonAsync(context, new JsonObject
        {
            ["AccessKeyId"] = accessKeyId,
            ["SecretAccessKey"] = secret,
            ["Token"] = session,
            ["AccountId"] = Account,
            ["Expiration"] = (DateTime.UtcNow + TimeSpan.FromHours(6)).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
        }, "application/json");
    }

    private (string AccessKeyId, string Secret, string SessionToken) Issue()
    {
        var accessKeyId = "ASIA" + Convert.ToHexString(RandomNumberGenerator.GetBytes(8));
        var secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(30));
        var session = Convert.ToBase64String(RandomNumberGenerator.GetBytes(60));
        _credentials[accessKeyId] = (secret, session);
        return (accessKeyId, secret, session);
    }

    private (string Secret, string? SessionToken)? LookupSecret(string accessKeyId) =>
        _credentials.TryGetValue(accessKeyId, out var entry) ? entry : null;

    private FakeKmsKey? Resolve(string keyId)
    {
        if (keyId.StartsWith("arn:", StringComparison.Ordinal))
        {
            var resource = keyId[(keyId.LastIndexOf(':') + 1)..];
            if (!keyId.StartsWith($"arn:aws:kms:{Region}:{Account}:", StringComparison.Ordinal))
            {
                return null;
            }

            keyId = resource.StartsWith("key/", StringComparison.Ordinal) ? resource[4..] : resource;
        }

        if (keyId.StartsWith("alias/", StringComparison.Ordinal))
        {
            return _aliases.TryGetValue(keyId, out var target) && _keys.TryGetValue(target, out var aliased) ? aliased : null;
        }

        return _keys.TryGetValue(keyId, out var key) ? key : null;
    }

    private static Dictionary<string, string> ReadContext(JsonElement request)
    {
        var context = new Dictionary<string, string>(StringComparer.Ordinal);
        if (request.TryGetProperty("EncryptionContext", out var map) && map.ValueKind == JsonValueKind.Object)
        {
            foreach (var pair in map.EnumerateObject())
            {
                context[pair.Name] = pair.Value.GetString()!;
            }
        }

        return context;
    }

    /// <summary>KMS binds the encryption context as AAD; any canonical form does for a fake.</summary>
    private static byte[] Aad(Dictionary<string, string> context) =>
        Encoding.UTF8.GetBytes(string.Concat(context.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}\n")));

    private static async Task JsonAsync(HttpContext context, JsonObject body, string contentType = "application/x-amz-json-1.1")
    {
        context.Response.ContentType = contentType;
        context.Response.Headers["x-amzn-RequestId"] = Guid.NewGuid().ToString();
        await context.Response.WriteAsync(body.ToJsonString());
    }

    private static async Task ErrorAsync(HttpContext context, int status, string code, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/x-amz-json-1.1";
        context.Response.Headers["x-amzn-RequestId"] = Guid.NewGuid().ToString();
        await context.Response.WriteAsync(new JsonObject { ["__type"] = code, ["message"] = message }.ToJsonString());
    }

    private static async Task StsErrorAsync(HttpContext context, string code, string message)
    {
        context.Response.StatusCode = 400;
        context.Response.ContentType = "text/xml";
        await context.Response.WriteAsync($"""
            <ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
              <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
              <RequestId>{Guid.NewGuid()}</RequestId>
            </ErrorResponse>
            """);
    }
}

/// <summary>A KMS key in the fake: its backing key materials (the last one encrypts; all decrypt, as after rotation).</summary>
public sealed class FakeKmsKey(string id, string arn, string keySpec)
{
    public string Id { get; } = id;

    public string Arn { get; } = arn;

    public string KeySpec { get; } = keySpec;

    public bool Enabled { get; set; } = true;

    public List<byte[]> Materials { get; } = [RandomNumberGenerator.GetBytes(32)];

    /// <summary>AWS automatic / on-demand rotation: new backing key for Encrypt, the old ones still decrypt, the ARN stays.</summary>
    public void Rotate() => Materials.Add(RandomNumberGenerator.GetBytes(32));
}
