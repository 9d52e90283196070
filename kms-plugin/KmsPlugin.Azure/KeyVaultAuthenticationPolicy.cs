using System.Text;
using Azure.Core;
using Azure.Core.Pipeline;

namespace KmsPlugin.Azure;

/// <summary>
/// Bearer-token authentication for Key Vault calls, in place of Azure.Core's BearerTokenAuthenticationPolicy so a
/// 401 can be answered the way the Key Vault SDK's challenge policy does: drop the cached token, acquire one again
/// (passing the claims of a Continuous Access Evaluation challenge, which makes Entra ID issue a fresh token rather
/// than serve its cache), and resend once. A second 401 stands and is reported as RootKeyDenied.
/// </summary>
/// <remarks>
/// Tokens are cached until five minutes before expiry (or the credential's refresh hint) and acquired under a lock,
/// so concurrent calls share one token request. Like Azure.Core, it refuses to send a token over plain http. The
/// token never appears in a message: only the Authorization header carries it, and Azure.Core redacts that header
/// in its logs.
/// </remarks>
internal sealed class KeyVaultAuthenticationPolicy(TokenCredential credential, string scope, TimeProvider time) : HttpPipelinePolicy, IDisposable
{
    /// <summary>Set on a message whose first attempt got a 401 and that was resent with a re-acquired token.</summary>
    public const string ReauthenticatedProperty = "kms-plugin.reauthenticated";

    private static readonly TimeSpan RefreshMargin = TimeSpan.FromMinutes(5);
    private readonly SemaphoreSlim _lock = new(1, 1);
    private AccessToken? _cached;

    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) =>
        throw new NotSupportedException("the Key Vault client is asynchronous only");

    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.Request.Uri.Scheme != Uri.UriSchemeHttps)
        {
            throw new InvalidOperationException("bearer token authentication is not permitted for non TLS protected (https) endpoints");
        }

        var token = await GetTokenAsync(message, null, null, message.CancellationToken);
        message.Request.Headers.SetValue(HttpHeader.Names.Authorization, "Bearer " + token.Token);
        await ProcessNextAsync(message, pipeline);
        if (message.Response.Status != 401)
        {
            return;
        }

        var claims = message.Response.Headers.TryGetValue("WWW-Authenticate", out var challenge) ? ClaimsFrom(challenge) : null;
        token = await GetTokenAsync(message, token, claims, message.CancellationToken);
        message.Request.Headers.SetValue(HttpHeader.Names.Authorization, "Bearer " + token.Token);
        message.SetProperty(ReauthenticatedProperty, true);
        await ProcessNextAsync(message, pipeline);
    }

    /// <summary>The cached token, or a new one when it is near expiry or <paramref name="rejected"/> (the one a 401 refused) is still cached.</summary>
    private async ValueTask<AccessToken> GetTokenAsync(HttpMessage message, AccessToken? rejected, string? claims, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            var now = time.GetUtcNow();
            if (_cached is { } cached && (rejected is null || cached.Token != rejected.Value.Token) && now < RefreshAt(cached))
            {
                return cached;
            }

            var context = new TokenRequestContext([scope], message.Request.ClientRequestId, claims);
            var fresh = await credential.GetTokenAsync(context, cancellationToken);
            _cached = fresh;
            return fresh;
        }
        finally
        {
            _lock.Release();
        }
    }

    private static DateTimeOffset RefreshAt(AccessToken token) =>
        token.RefreshOn is { } refreshOn && refreshOn < token.ExpiresOn - RefreshMargin ? refreshOn : token.ExpiresOn - RefreshMargin;

    /// <summary>
    /// The <c>claims</c> parameter of a CAE challenge (<c>Bearer ..., error="insufficient_claims", claims="base64"</c>),
    /// decoded; null when absent or not valid base64.
    /// </summary>
    internal static string? ClaimsFrom(string challenge)
    {
        const string key = "claims=\"";
        var start = challenge.IndexOf(key, StringComparison.OrdinalIgnoreCase);
        if (start < 0)
        {
            return null;
        }

        start += key.Length;
        var end = challenge.IndexOf('"', start);
        if (end < 0)
        {
            return null;
        }

        var encoded = challenge[start..end];
        var padded = encoded.PadRight(encoded.Length + ((4 - (encoded.Length % 4)) % 4), '=');
        try
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(padded));
        }
        catch (FormatException)
        {
            return null;
        }
    }

    public void Dispose() => _lock.Dispose();
}
