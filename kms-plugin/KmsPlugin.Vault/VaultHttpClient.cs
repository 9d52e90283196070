using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Vault;

/// <summary>
/// HTTP to one Vault / OpenBao server: the token in X-Vault-Token, the namespace in X-Vault-Namespace (Vault HTTP API,
/// "Authentication" and "Namespaces"), JSON bodies, a per-request timeout, TLS against the configured CA bundle.
/// Redirects are followed (a standby node redirects to the active one, and Vault's own client follows them).
/// Nothing here logs: the token, request bodies and responses never reach a log or a message.
/// </summary>
internal sealed class VaultHttpClient : IDisposable
{
    private const int MaxResponseBytes = 1024 * 1024;
    private static readonly MediaTypeHeaderValue Json = new("application/json");

    private readonly HttpClient _http;
    private readonly Uri _apiBase;
    private readonly string? _namespace;
    private readonly TimeSpan _requestTimeout;
    private readonly TimeProvider _time;

    public VaultHttpClient(VaultTransitRootKeyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        // TLS trust: the system store plus caFile, if set (CaBundle, shared with the other remote providers).
        var handler = CaBundle.CreateHandler(options.CaFile is { } caFile ? CaBundle.Load(caFile, $"vault root key '{options.Name}'") : null);
        handler.ConnectTimeout = options.RequestTimeout;
        handler.MaxAutomaticRedirections = 3;
        handler.UseCookies = false;
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _apiBase = new Uri(options.Address.GetLeftPart(UriPartial.Authority) + "/v1/");
        _namespace = options.Namespace?.Trim('/');
        _requestTimeout = options.RequestTimeout;
        _time = options.Time;
    }

    /// <summary>Sends one request; a non-2xx status becomes a <see cref="VaultResponseException"/>.</summary>
    /// <param name="path">Below <c>/v1/</c>, e.g. <c>transit/encrypt/k8s</c>.</param>
    /// <exception cref="TimeoutException">No answer within the request timeout (the caller's token was not cancelled).</exception>
    public async Task<VaultResponse> SendAsync(HttpMethod method, string path, ReadOnlyMemory<byte>? body, string? token, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_requestTimeout);
        using var request = new HttpRequestMessage(method, new Uri(_apiBase, path));
        if (token is not null)
        {
            request.Headers.TryAddWithoutValidation("X-Vault-Token", token);
        }

        if (_namespace is not null)
        {
            request.Headers.TryAddWithoutValidation("X-Vault-Namespace", _namespace);
        }

        if (body is { } content)
        {
            request.Content = new ReadOnlyMemoryContent(content);
            request.Content.Headers.ContentType = Json;
        }

        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var bytes = await ReadBodyAsync(response.Content, timeout.Token);
            if (!response.IsSuccessStatusCode)
            {
                try
                {
                    throw new VaultResponseException(response.StatusCode, ParseErrors(bytes), RetryAfter(response.Headers.RetryAfter));
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(bytes);
                }
            }

            return VaultResponse.Parse(bytes);
        }
        catch (OperationCanceledException e) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"no answer from Vault within {_requestTimeout.TotalSeconds:0.###}s", e);
        }
    }

    public void Dispose() => _http.Dispose();

    private static async Task<byte[]> ReadBodyAsync(HttpContent content, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength > MaxResponseBytes)
        {
            throw new InvalidDataException($"response of {content.Headers.ContentLength} bytes is larger than {MaxResponseBytes}");
        }

        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        var buffer = new byte[(int)(content.Headers.ContentLength ?? 4096)];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (buffer.Length >= MaxResponseBytes)
                {
                    CryptographicOperations.ZeroMemory(buffer);
                    throw new InvalidDataException($"response is larger than {MaxResponseBytes} bytes");
                }

                var larger = new byte[Math.Min(MaxResponseBytes, Math.Max(buffer.Length * 2, 4096))];
                buffer.CopyTo(larger, 0);
                CryptographicOperations.ZeroMemory(buffer);
                buffer = larger;
            }

            var read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken);
            if (read == 0)
            {
                break;
            }

            length += read;
        }

        if (length == buffer.Length)
        {
            return buffer;
        }

        var exact = buffer.AsSpan(0, length).ToArray();
        CryptographicOperations.ZeroMemory(buffer);
        return exact;
    }

    /// <summary>Vault's <c>{"errors": ["..."]}</c>; an unreadable error body yields no strings (the status still classifies it).</summary>
    private static List<string> ParseErrors(byte[] body)
    {
        var errors = new List<string>();
        if (body.Length == 0)
        {
            return errors;
        }

        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("errors", out var list) && list.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in list.EnumerateArray())
                {
                    if (item.ValueKind == JsonValueKind.String && item.GetString() is { Length: > 0 } text)
                    {
                        errors.Add(text);
                    }
                }
            }
        }
        catch (JsonException)
        {
            // a proxy's HTML error page, say
        }

        return errors;
    }

    private TimeSpan? RetryAfter(RetryConditionHeaderValue? header)
    {
        if (header?.Delta is { } delta)
        {
            return delta;
        }

        if (header?.Date is { } date)
        {
            var wait = date - _time.GetUtcNow();
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }

        return null;
    }
}

/// <summary>A successful Vault response: the parsed JSON over a buffer that is zeroed on dispose (decrypt responses hold a KEK).</summary>
internal sealed class VaultResponse : IDisposable
{
    private readonly byte[] _body;

    private VaultResponse(byte[] body, JsonDocument document)
    {
        _body = body;
        Document = document;
    }

    public JsonDocument Document { get; }

    public static VaultResponse Parse(byte[] body)
    {
        try
        {
            return new VaultResponse(body, JsonDocument.Parse(body.AsMemory()));
        }
        catch
        {
            CryptographicOperations.ZeroMemory(body);
            throw;
        }
    }

    /// <summary>The object under <paramref name="name"/> (<c>data</c> for secrets engines, <c>auth</c> for logins).</summary>
    /// <exception cref="InvalidDataException">The response has no such object.</exception>
    public JsonElement Section(string name) =>
        Document.RootElement.ValueKind == JsonValueKind.Object && Document.RootElement.TryGetProperty(name, out var section)
            && section.ValueKind == JsonValueKind.Object
            ? section
            : throw new InvalidDataException($"the response has no \"{name}\" object");

    public void Dispose()
    {
        Document.Dispose();
        CryptographicOperations.ZeroMemory(_body);
    }
}
