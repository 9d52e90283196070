using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Azure;

/// <summary>
/// A minimal Key Vault / Managed HSM keys client on an Azure.Core <see cref="HttpPipeline"/> (the Key Vault Keys SDK
/// is not available here): <c>GET keys/{name}[/{version}]</c>, <c>POST keys/{name}/{version}/wrapkey</c> and
/// <c>/unwrapkey</c> with <c>?api-version=</c> (Key Vault REST "Wrap Key", "Unwrap Key", "Get Key"). One HTTP attempt
/// per call: Azure.Core's retries are off, the caller runs the shared RetryPolicy around each call.
/// </summary>
/// <remarks>
/// Key bytes: the wrapkey request body (it holds the KEK, base64url) is built in a pinned array and zeroed after the
/// send; the unwrapkey response is parsed in place with <see cref="Utf8JsonReader"/> and decoded straight into a
/// pinned array, and the buffered response body is zeroed afterwards. No key material becomes a string.
/// </remarks>
internal sealed class KeyVaultClient : IDisposable
{
    public const string WrapOperation = "wrapkey";
    public const string UnwrapOperation = "unwrapkey";
    public const string GetOperation = "get key";

    private readonly AzureKeyVaultRootKeyOptions _options;
    private readonly KeyVaultAuthenticationPolicy _authentication;
    private readonly HttpPipeline _pipeline;
    private readonly TimeProvider _time;

    public KeyVaultClient(AzureKeyVaultRootKeyOptions options, TokenCredential credential, CaBundle? caBundle, TimeProvider time)
    {
        _options = options;
        _time = time;
        var pipelineOptions = new KeyVaultPipelineOptions
        {
            Transport = new HttpClientTransport(CaBundle.CreateHandler(caBundle)),
        };
        pipelineOptions.Retry.MaxRetries = 0;
        pipelineOptions.Retry.NetworkTimeout = options.NetworkTimeout;
        pipelineOptions.Diagnostics.ApplicationId = "k8s-kms-plugin";
        pipelineOptions.Diagnostics.IsLoggingContentEnabled = false;
        _authentication = new KeyVaultAuthenticationPolicy(credential, options.EffectiveScope, time);
        _pipeline = HttpPipelineBuilder.Build(pipelineOptions, _authentication);
    }

    /// <summary>Reads the key (its newest version when <paramref name="version"/> is null).</summary>
    public Task<KeyVaultKeyProperties> GetKeyAsync(string? version, CancellationToken cancellationToken) =>
        SendAsync(GetOperation, RequestMethod.Get, version, action: null, content: null, ParseKey, cancellationToken);

    /// <summary>wrapkey with <paramref name="algorithm"/> under <paramref name="version"/>; returns Key Vault's output.</summary>
    public async Task<byte[]> WrapAsync(string version, string algorithm, ReadOnlyMemory<byte> plaintext, CancellationToken cancellationToken)
    {
        var body = WrapRequestBody(algorithm, plaintext.Span);
        try
        {
            return await SendAsync(WrapOperation, RequestMethod.Post, version, "wrapkey", RequestContent.Create(body),
                response => ParseWrapResult(response, version), cancellationToken);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(body);
        }
    }

    /// <summary>unwrapkey of <paramref name="wrapped"/> under <paramref name="version"/>; the plaintext in a secret buffer.</summary>
    public Task<SecretBuffer> UnwrapAsync(string version, string algorithm, ReadOnlyMemory<byte> wrapped, CancellationToken cancellationToken)
    {
        var json = $$"""{"alg":"{{algorithm}}","value":"{{Base64Url.EncodeToString(wrapped.Span)}}"}""";
        return SendAsync(UnwrapOperation, RequestMethod.Post, version, "unwrapkey", RequestContent.Create(Encoding.UTF8.GetBytes(json)),
            ParseUnwrapResult, cancellationToken);
    }

    public void Dispose() => _authentication.Dispose();

    private async Task<T> SendAsync<T>(string operation, RequestMethod method, string? version, string? action, RequestContent? content,
        Func<Response, T> onSuccess, CancellationToken cancellationToken)
    {
        using var message = _pipeline.CreateMessage();
        var request = message.Request;
        request.Method = method;
        request.Uri.Reset(_options.VaultUri);
        request.Uri.AppendPath("/keys/", escape: false);
        request.Uri.AppendPath(_options.KeyName, escape: true);
        if (version is not null)
        {
            request.Uri.AppendPath("/", escape: false);
            request.Uri.AppendPath(version, escape: true);
        }

        if (action is not null)
        {
            request.Uri.AppendPath("/", escape: false);
            request.Uri.AppendPath(action, escape: false);
        }

        request.Uri.AppendQuery("api-version", _options.ApiVersion, escapeValue: true);
        request.Headers.SetValue(HttpHeader.Names.Accept, "application/json");
        if (content is not null)
        {
            request.Headers.SetValue(HttpHeader.Names.ContentType, "application/json");
            request.Content = content;
        }

        message.ResponseClassifier = new StatusCodeClassifier([200]);
        try
        {
            await _pipeline.SendAsync(message, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is not KmsPluginException)
        {
            throw KeyVaultErrors.FromException(_options.Name, operation, e);
        }

        var response = message.Response;
        try
        {
            if (response.Status != 200)
            {
                var retryAfter = RetryAfter.Parse(Header(response, "Retry-After"),
                    Header(response, "retry-after-ms") ?? Header(response, "x-ms-retry-after-ms"), _time.GetUtcNow());
                var reauthenticated = message.TryGetProperty(KeyVaultAuthenticationPolicy.ReauthenticatedProperty, out var flag) && flag is true;
                throw KeyVaultErrors.FromResponse(_options.Name, operation, response.Status, response.Content, retryAfter, reauthenticated);
            }

            return onSuccess(response);
        }
        finally
        {
            // The buffered body may hold an unwrapped KEK: zero it before the pipeline lets it go.
            if (response.ContentStream is MemoryStream buffered && buffered.TryGetBuffer(out var bytes))
            {
                CryptographicOperations.ZeroMemory(bytes);
            }
        }
    }

    private static string? Header(Response response, string name) => response.Headers.TryGetValue(name, out var value) ? value : null;

    /// <summary><c>{"alg":"...","value":"&lt;base64url&gt;"}</c> in a pinned array of exactly the right size (zeroed by the caller).</summary>
    private static byte[] WrapRequestBody(string algorithm, ReadOnlySpan<byte> plaintext)
    {
        var prefix = Encoding.ASCII.GetBytes("{\"alg\":\"" + algorithm + "\",\"value\":\"");
        var suffix = "\"}"u8;
        var encodedLength = Base64Url.GetEncodedLength(plaintext.Length);
        var body = GC.AllocateArray<byte>(prefix.Length + encodedLength + suffix.Length, pinned: true);
        prefix.CopyTo(body, 0);
        var written = Base64Url.EncodeToUtf8(plaintext, body.AsSpan(prefix.Length, encodedLength));
        if (written != encodedLength)
        {
            throw new InvalidOperationException("base64url encoding produced an unexpected length");
        }

        suffix.CopyTo(body.AsSpan(prefix.Length + encodedLength));
        return body;
    }

    private KeyVaultKeyProperties ParseKey(Response response)
    {
        try
        {
            using var document = JsonDocument.Parse(response.Content.ToMemory());
            var root = document.RootElement;
            var key = root.GetProperty("key");
            var kid = key.GetProperty("kid").GetString();
            var version = KeyVaultKeyIdentifier.VersionOf(kid, _options.KeyName)
                ?? throw Corrupt(GetOperation, "the key's kid does not name a version of this key");
            var keyType = key.TryGetProperty("kty", out var kty) && kty.ValueKind == JsonValueKind.String ? kty.GetString() ?? "" : "";
            List<string>? operations = null;
            if (key.TryGetProperty("key_ops", out var ops) && ops.ValueKind == JsonValueKind.Array)
            {
                operations = ops.EnumerateArray().Where(o => o.ValueKind == JsonValueKind.String).Select(o => o.GetString()!).ToList();
            }

            var enabled = !root.TryGetProperty("attributes", out var attributes)
                || !attributes.TryGetProperty("enabled", out var flag) || flag.ValueKind != JsonValueKind.False;
            return new KeyVaultKeyProperties(version, keyType, enabled, operations);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw Corrupt(GetOperation, "the response is not a Key Vault key bundle", e);
        }
    }

    private byte[] ParseWrapResult(Response response, string version)
    {
        var json = response.Content.ToMemory().Span;
        var (kid, range) = ReadKidAndValue(json, WrapOperation);
        var value = json[range];
        if (KeyVaultKeyIdentifier.VersionOf(kid, _options.KeyName) != version)
        {
            throw Corrupt(WrapOperation, "the response's kid names another key or version than the one asked for");
        }

        var wrapped = new byte[Base64Url.GetMaxDecodedLength(value.Length)];
        if (Base64Url.DecodeFromUtf8(value, wrapped, out _, out var written) != System.Buffers.OperationStatus.Done || written == 0)
        {
            throw Corrupt(WrapOperation, "the response value is not base64url");
        }

        return wrapped[..written];
    }

    private SecretBuffer ParseUnwrapResult(Response response)
    {
        if (response.ContentStream is not MemoryStream buffered || !buffered.TryGetBuffer(out var segment))
        {
            throw Corrupt(UnwrapOperation, "the response was not buffered");
        }

        var json = segment.AsSpan(0, (int)buffered.Length);
        var (_, range) = ReadKidAndValue(json, UnwrapOperation);
        var value = json[range];
        var plain = GC.AllocateArray<byte>(Base64Url.GetMaxDecodedLength(value.Length), pinned: true);
        try
        {
            if (Base64Url.DecodeFromUtf8(value, plain, out _, out var written) != System.Buffers.OperationStatus.Done || written == 0)
            {
                throw Corrupt(UnwrapOperation, "the response value is not base64url");
            }

            return SecretBuffer.CopyOf(plain.AsSpan(0, written));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plain);
        }
    }

    /// <summary>
    /// Reads <c>kid</c> and where the raw base64url <c>value</c> of a key-operation result sits in
    /// <paramref name="json"/>, without copying the value. base64url never needs JSON escapes, so an escaped value
    /// is treated as a malformed response.
    /// </summary>
    private (string? Kid, Range Value) ReadKidAndValue(ReadOnlySpan<byte> json, string operation)
    {
        string? kid = null;
        Range value = default;
        var found = false;
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw Corrupt(operation, "the response is not a JSON object");
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isKid = reader.ValueTextEquals("kid"u8);
                var isValue = reader.ValueTextEquals("value"u8);
                reader.Read();
                if (isKid && reader.TokenType == JsonTokenType.String)
                {
                    kid = reader.GetString();
                }
                else if (isValue && reader.TokenType == JsonTokenType.String && !reader.ValueIsEscaped)
                {
                    // TokenStartIndex is the opening quote of the string.
                    var start = (int)reader.TokenStartIndex + 1;
                    value = start..(start + reader.ValueSpan.Length);
                    found = true;
                }
                else
                {
                    reader.Skip();
                }
            }
        }
        catch (JsonException e)
        {
            throw Corrupt(operation, "the response is not valid JSON", e);
        }

        return found ? (kid, value) : throw Corrupt(operation, "the response has no value");
    }

    private KmsPluginException Corrupt(string operation, string problem, Exception? inner = null) =>
        inner is null
            ? new(KmsErrorKind.Corruption, $"azure root key '{_options.Name}': {operation}: {problem}")
            : new(KmsErrorKind.Corruption, $"azure root key '{_options.Name}': {operation}: {problem}", inner);

    /// <summary>Azure.Core's options type is abstract; this client needs nothing beyond the defaults it adjusts.</summary>
    private sealed class KeyVaultPipelineOptions : ClientOptions;
}

/// <summary>What the plugin needs from a Key Vault key bundle.</summary>
internal sealed record KeyVaultKeyProperties(string Version, string KeyType, bool Enabled, IReadOnlyList<string>? Operations);
