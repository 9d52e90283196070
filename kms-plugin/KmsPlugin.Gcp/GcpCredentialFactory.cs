using System.Text.Json;
using Google.Apis.Auth.OAuth2;
using Google.Apis.Http;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.Security;

namespace KmsPlugin.Gcp;

/// <summary>
/// Builds the Google credential of a <c>gcp</c> root key with Google.Apis.Auth: a credential file (service-account
/// key, or an <c>external_account</c> Workload Identity Federation configuration whose subject token is a file),
/// else Application Default Credentials. The credential is scoped to Cloud KMS and makes its token requests through
/// the same TLS trust (system roots plus <c>caFile</c>) and network timeout as the KMS calls.
/// </summary>
/// <remarks>
/// Google asks that credential configurations be validated before use ("Validate credential configurations from
/// external sources"): only the two types this plugin documents are accepted from a file, by type, through
/// <see cref="CredentialFactory"/>, and an <c>external_account</c> whose subject token comes from running an
/// executable is refused. The token endpoints are the ones in the JSON (<c>token_uri</c>, <c>token_url</c>), which is
/// also how tests point them at a fake.
/// </remarks>
internal static class GcpCredentialFactory
{
    public const string ServiceAccountType = "service_account";
    public const string ExternalAccountType = "external_account";

    public static async Task<GoogleCredential> CreateAsync(GcpKmsRootKeyOptions options, CaBundle? caBundle, CancellationToken cancellationToken)
    {
        var owner = $"gcp root key '{options.Name}'";
        var (path, field) = options.CredentialsFile is { } configured ? (configured, "credentialsFile")
            : Environment.GetEnvironmentVariable("GOOGLE_APPLICATION_CREDENTIALS") is { Length: > 0 } fromEnvironment ? (fromEnvironment, "GOOGLE_APPLICATION_CREDENTIALS")
            : (null, null);

        GoogleCredential credential;
        if (path is null)
        {
            try
            {
                // gcloud's application-default user credentials, then the GCE/GKE metadata server.
                credential = await GoogleCredential.GetApplicationDefaultAsync(cancellationToken);
            }
            catch (InvalidOperationException e)
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyDenied,
                    $"{owner}: no credentials: set credentialsFile, or GOOGLE_APPLICATION_CREDENTIALS, or run on GCE/GKE with a service account ({e.Message})", e);
            }
        }
        else
        {
            var type = ReadAndCheckType(path, owner, field!);
            if (type == ServiceAccountType)
            {
                SecretFiles.RequireOwnerOnly(path, owner, field!); // a service-account key is a long-lived secret
            }

            try
            {
                credential = await CredentialFactory.FromFileAsync(path, type, cancellationToken);
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException or IOException or FormatException or System.Security.Cryptography.CryptographicException)
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{owner}: {field} {path} is not a usable {type} credential: {e.Message}", e);
            }
        }

        return credential.CreateScoped(GcpKmsRootKeyOptions.CloudKmsScope)
            .CreateWithHttpClientFactory(new TrustingHttpClientFactory(caBundle, options.NetworkTimeout));
    }

    private static string ReadAndCheckType(string path, string owner, string field)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = document.RootElement;
            var type = root.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            if (type is not (ServiceAccountType or ExternalAccountType))
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyDenied,
                    $"{owner}: {field} {path} has type '{type}'; accepted: {ServiceAccountType}, {ExternalAccountType} (Workload Identity Federation)");
            }

            if (type == ExternalAccountType && root.TryGetProperty("credential_source", out var source)
                && source.ValueKind == JsonValueKind.Object && source.TryGetProperty("executable", out _))
            {
                throw new KmsPluginException(KmsErrorKind.RootKeyDenied,
                    $"{owner}: {field} {path} sources its token from an executable, which this plugin does not run; use a token file (credential_source.file)");
            }

            return type;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{owner}: cannot read {field} {path}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Token requests through a handler that trusts the <c>caFile</c> bundle too, one try each (the root key's retry
    /// policy retries the whole call), bounded by the network timeout.
    /// </summary>
    private sealed class TrustingHttpClientFactory(CaBundle? caBundle, TimeSpan timeout) : IHttpClientFactory
    {
        private readonly HandlerFactory _handlers = new(caBundle);

        public ConfigurableHttpClient CreateHttpClient(CreateHttpClientArgs args)
        {
            var client = _handlers.CreateHttpClient(args);
            client.Timeout = timeout;
            client.MessageHandler.NumTries = 1;
            return client;
        }
    }

    private sealed class HandlerFactory(CaBundle? caBundle) : HttpClientFactory
    {
        protected override HttpMessageHandler CreateHandler(CreateHttpClientArgs args) => CaBundle.CreateHandler(caBundle);
    }
}
