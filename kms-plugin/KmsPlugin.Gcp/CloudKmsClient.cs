using System.Buffers.Text;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Google.Apis.Auth.OAuth2;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Gcp;

/// <summary>
/// A minimal Cloud KMS client over the REST API (v1): <c>GET {cryptoKey}</c>, <c>POST {cryptoKeyVersion}:encrypt</c>
/// and <c>POST {cryptoKey}:decrypt</c>, with every CRC32C integrity field of "Verifying end-to-end data integrity"
/// sent and checked. One HTTP attempt per call; the caller runs the shared RetryPolicy around it.
/// </summary>
/// <remarks>
/// <para><b>Why REST and not gRPC.</b> Google.Cloud.Kms.V1 is not available here, so gRPC would mean vendoring the
/// KMS protos (and google.longrunning, which no available package ships) or a hand-written wire subset, plus
/// Grpc.Net.Client's refusal to attach CallCredentials to a non-TLS channel. REST needs none of that: the request
/// shapes are four small JSON objects (proto3 JSON mapping: bytes as base64, int64 as strings), the bearer token
/// and TLS trust (caFile) are handled by the same HttpClient code as the token requests, and the integrity fields
/// are identical in both. The measured cost difference (feasibility.md section 5) is far below a KMS round trip,
/// and the plugin calls Cloud KMS about once per local KEK, not per request.</para>
/// <para>Key bytes: the encrypt request body (it holds the KEK, base64) is built in a pinned array and zeroed after
/// the send; the decrypt response is read into an array that is zeroed after its plaintext is decoded into a
/// pinned buffer. No key material becomes a string.</para>
/// </remarks>
internal sealed class CloudKmsClient : IDisposable
{
    public const string EncryptOperation = "encrypt";
    public const string DecryptOperation = "decrypt";
    public const string GetOperation = "get cryptoKey";

    private readonly GcpKmsRootKeyOptions _options;
    private readonly ITokenAccess _credential;
    private readonly HttpClient _http;
    private readonly TimeProvider _time;

    public CloudKmsClient(GcpKmsRootKeyOptions options, ITokenAccess credential, CaBundle? caBundle, TimeProvider time)
    {
        _options = options;
        _credential = credential;
        _time = time;
        _http = new HttpClient(CaBundle.CreateHandler(caBundle)) { Timeout = Timeout.InfiniteTimeSpan }; // per attempt below
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("k8s-kms-plugin", "1"));
    }

    /// <summary>GET the CryptoKey: its purpose and primary version.</summary>
    public Task<CryptoKeyProperties> GetCryptoKeyAsync(CancellationToken cancellationToken) =>
        SendAsync(GetOperation, HttpMethod.Get, _options.CryptoKey, null, ParseCryptoKey, cancellationToken);

    /// <summary>Encrypts under exactly <paramref name="version"/> (not whatever is primary at that moment), so the key_id that names it stays true.</summary>
    public async Task<EncryptResult> EncryptAsync(string version, ReadOnlyMemory<byte> plaintext, byte[] aad, CancellationToken cancellationToken)
    {
        var versionName = $"{_options.CryptoKey}/cryptoKeyVersions/{version}";
        var body = EncryptRequestBody(plaintext.Span, aad);
        try
        {
            var result = await SendAsync(EncryptOperation, HttpMethod.Post, versionName + ":encrypt", body, ParseEncrypt, cancellationToken);

            // Integrity checks of "Verifying end-to-end data integrity": the service saw our plaintext and AAD as sent,
            // and we received its ciphertext as sent.
            if (!result.VerifiedPlaintextCrc32C || !result.VerifiedAadCrc32C)
            {
                throw Corrupt(EncryptOperation, "Cloud KMS did not confirm the plaintext/AAD checksums (verified*Crc32c false): the request was altered in transit");
            }

            if (result.CiphertextCrc32C != Crc32C.Of(result.Ciphertext))
            {
                throw Corrupt(EncryptOperation, "the ciphertext does not match its ciphertextCrc32c: the response was altered in transit");
            }

            if (result.Name != versionName)
            {
                throw Corrupt(EncryptOperation, "the response names another CryptoKeyVersion than the one asked for");
            }

            return result;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(body);
        }
    }

    /// <summary>Decrypts; Cloud KMS picks the version from the ciphertext.</summary>
    public async Task<SecretBuffer> DecryptAsync(ReadOnlyMemory<byte> ciphertext, byte[] aad, CancellationToken cancellationToken)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string>
        {
            ["ciphertext"] = Convert.ToBase64String(ciphertext.Span),
            ["ciphertextCrc32c"] = Crc32C.Of(ciphertext.Span).ToString(CultureInfo.InvariantCulture),
            ["additionalAuthenticatedData"] = Convert.ToBase64String(aad),
            ["additionalAuthenticatedDataCrc32c"] = Crc32C.Of(aad).ToString(CultureInfo.InvariantCulture),
        });
        return await SendAsync(DecryptOperation, HttpMethod.Post, _options.CryptoKey + ":decrypt", json, ParseDecrypt, cancellationToken);
    }

    public void Dispose() => _http.Dispose();

    private async Task<T> SendAsync<T>(string operation, HttpMethod method, string resource, byte[]? body, Func<byte[], T> onSuccess,
        CancellationToken cancellationToken)
    {
        var uri = new Uri(_options.Endpoint, "v1/" + resource);
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attempt.CancelAfter(_options.NetworkTimeout);
        byte[] responseBody;
        HttpStatusCode status;
        TimeSpan? retryAfter = null;
        try
        {
            var token = await _credential.GetAccessTokenForRequestAsync(uri.ToString(), attempt.Token);
            using var request = new HttpRequestMessage(method, uri);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            if (body is not null)
            {
                request.Content = new ByteArrayContent(body);
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            }

            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, attempt.Token);
            status = response.StatusCode;
            responseBody = await response.Content.ReadAsByteArrayAsync(attempt.Token);
            if (response.Headers.RetryAfter is { } header)
            {
                retryAfter = header.Delta ?? (header.Date is { } date ? date - _time.GetUtcNow() : null);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is not KmsPluginException)
        {
            throw CloudKmsErrors.FromException(_options.Name, operation, e);
        }

        try
        {
            if (status != HttpStatusCode.OK)
            {
                throw CloudKmsErrors.FromResponse(_options.Name, operation, status, responseBody, retryAfter);
            }

            return onSuccess(responseBody);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(responseBody); // a decrypt response holds a KEK
        }
    }

    /// <summary>The encrypt request JSON, in a pinned array (the caller zeroes it).</summary>
    private static byte[] EncryptRequestBody(ReadOnlySpan<byte> plaintext, byte[] aad)
    {
        var prefix = "{\"plaintext\":\""u8;
        var suffix = Encoding.ASCII.GetBytes(
            $"\",\"plaintextCrc32c\":\"{Crc32C.Of(plaintext).ToString(CultureInfo.InvariantCulture)}\""
            + $",\"additionalAuthenticatedData\":\"{Convert.ToBase64String(aad)}\""
            + $",\"additionalAuthenticatedDataCrc32c\":\"{Crc32C.Of(aad).ToString(CultureInfo.InvariantCulture)}\"}}");
        var encodedLength = Base64.GetMaxEncodedToUtf8Length(plaintext.Length);
        var body = GC.AllocateArray<byte>(prefix.Length + encodedLength + suffix.Length, pinned: true);
        prefix.CopyTo(body);
        if (Base64.EncodeToUtf8(plaintext, body.AsSpan(prefix.Length, encodedLength), out _, out var written) != System.Buffers.OperationStatus.Done
            || written != encodedLength)
        {
            throw new InvalidOperationException("base64 encoding produced an unexpected length");
        }

        suffix.CopyTo(body.AsSpan(prefix.Length + encodedLength));
        return body;
    }

    private CryptoKeyProperties ParseCryptoKey(byte[] json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            var purpose = root.TryGetProperty("purpose", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
            string? primaryVersion = null;
            string? primaryState = null;
            if (root.TryGetProperty("primary", out var primary) && primary.ValueKind == JsonValueKind.Object)
            {
                var name = primary.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
                primaryVersion = VersionOf(name);
                if (name is not null && primaryVersion is null)
                {
                    throw Corrupt(GetOperation, "the primary version's name is not a version of this key");
                }

                primaryState = primary.TryGetProperty("state", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
            }

            return new CryptoKeyProperties(purpose, primaryVersion, primaryState);
        }
        catch (JsonException e)
        {
            throw Corrupt(GetOperation, "the response is not a CryptoKey", e);
        }
    }

    private EncryptResult ParseEncrypt(byte[] json)
    {
        string? name = null;
        byte[]? ciphertext = null;
        ulong? crc = null;
        bool verifiedPlaintext = false, verifiedAad = false;
        try
        {
            var reader = new Utf8JsonReader(json);
            ExpectObject(ref reader, EncryptOperation);
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var property = reader.GetString();
                reader.Read();
                switch (property)
                {
                    case "name" when reader.TokenType == JsonTokenType.String:
                        name = reader.GetString();
                        break;
                    case "ciphertext" when reader.TokenType == JsonTokenType.String:
                        ciphertext = reader.GetBytesFromBase64();
                        break;
                    case "ciphertextCrc32c":
                        crc = ReadInt64(ref reader);
                        break;
                    case "verifiedPlaintextCrc32c":
                        verifiedPlaintext = reader.TokenType == JsonTokenType.True;
                        break;
                    case "verifiedAdditionalAuthenticatedDataCrc32c":
                        verifiedAad = reader.TokenType == JsonTokenType.True;
                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            throw Corrupt(EncryptOperation, "the response is not valid JSON of an EncryptResponse", e);
        }

        if (ciphertext is not { Length: > 0 } || crc is null || name is null)
        {
            throw Corrupt(EncryptOperation, "the response lacks name, ciphertext or ciphertextCrc32c");
        }

        return new EncryptResult(name, ciphertext, (uint)crc.Value == crc.Value ? (uint)crc.Value : throw Corrupt(EncryptOperation, "ciphertextCrc32c is out of range"),
            verifiedPlaintext, verifiedAad);
    }

    private SecretBuffer ParseDecrypt(byte[] json)
    {
        byte[]? encoded = null;
        var encodedLength = 0;
        ulong? crc = null;
        try
        {
            var reader = new Utf8JsonReader(json);
            ExpectObject(ref reader, DecryptOperation);
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var property = reader.GetString();
                reader.Read();
                switch (property)
                {
                    case "plaintext" when reader.TokenType == JsonTokenType.String:
                        // CopyString unescapes (JSON writers may escape '+' or '/') into a pinned buffer we zero.
                        if (encoded is not null)
                        {
                            CryptographicOperations.ZeroMemory(encoded);
                        }

                        encoded = GC.AllocateArray<byte>(reader.HasValueSequence ? (int)reader.ValueSequence.Length : reader.ValueSpan.Length, pinned: true);
                        encodedLength = reader.CopyString(encoded);
                        break;
                    case "plaintextCrc32c":
                        crc = ReadInt64(ref reader);
                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }

            if (encoded is null || crc is null)
            {
                throw Corrupt(DecryptOperation, "the response lacks plaintext or plaintextCrc32c");
            }

            var plain = GC.AllocateArray<byte>(Base64.GetMaxDecodedFromUtf8Length(encodedLength), pinned: true);
            try
            {
                if (Base64.DecodeFromUtf8(encoded.AsSpan(0, encodedLength), plain, out _, out var written) != System.Buffers.OperationStatus.Done
                    || written == 0)
                {
                    throw Corrupt(DecryptOperation, "the response plaintext is not base64");
                }

                if (Crc32C.Of(plain.AsSpan(0, written)) != crc.Value)
                {
                    throw Corrupt(DecryptOperation, "the plaintext does not match its plaintextCrc32c: the response was altered in transit");
                }

                return SecretBuffer.CopyOf(plain.AsSpan(0, written));
            }
            finally
            {
                CryptographicOperations.ZeroMemory(plain);
            }
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            throw Corrupt(DecryptOperation, "the response is not valid JSON of a DecryptResponse", e);
        }
        finally
        {
            if (encoded is not null)
            {
                CryptographicOperations.ZeroMemory(encoded);
            }
        }
    }

    private void ExpectObject(ref Utf8JsonReader reader, string operation)
    {
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw Corrupt(operation, "the response is not a JSON object");
        }
    }

    /// <summary>proto3 JSON: int64 as a decimal string (numbers accepted too).</summary>
    private static ulong ReadInt64(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.String => ulong.Parse(reader.GetString()!, NumberStyles.None, CultureInfo.InvariantCulture),
        JsonTokenType.Number => reader.GetUInt64(),
        _ => throw new FormatException("not an int64"),
    };

    /// <summary>The version number in <c>{cryptoKey}/cryptoKeyVersions/{n}</c>, or null.</summary>
    internal string? VersionOf(string? name)
    {
        var prefix = _options.CryptoKey + "/cryptoKeyVersions/";
        if (name is null || !name.StartsWith(prefix, StringComparison.Ordinal))
        {
            return null;
        }

        var version = name[prefix.Length..];
        return version.Length is > 0 and <= 19 && version.All(char.IsAsciiDigit) ? version : null;
    }

    private KmsPluginException Corrupt(string operation, string problem, Exception? inner = null) =>
        inner is null
            ? new(KmsErrorKind.Corruption, $"gcp root key '{_options.Name}': {operation}: {problem}")
            : new(KmsErrorKind.Corruption, $"gcp root key '{_options.Name}': {operation}: {problem}", inner);
}

/// <summary>What the plugin needs from a CryptoKey.</summary>
internal sealed record CryptoKeyProperties(string? Purpose, string? PrimaryVersion, string? PrimaryState);

/// <summary>A checked EncryptResponse.</summary>
internal sealed record EncryptResult(string Name, byte[] Ciphertext, uint CiphertextCrc32C, bool VerifiedPlaintextCrc32C, bool VerifiedAadCrc32C);
