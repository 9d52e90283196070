using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KmsPlugin.Core.Errors;

namespace KmsPlugin.Core.Security;

/// <summary>
/// Extra certificate authorities a remote root-key provider trusts (<c>caFile</c> in the provider's config), for
/// private endpoints and TLS-inspecting proxies whose certificates chain to a private CA, and for the tests' loopback
/// fakes. The bundle is trusted <em>in addition to</em> the system roots, never instead of them: one setting then
/// covers a private Key Vault / Cloud KMS endpoint while the public identity endpoints (Entra ID, Google STS) keep
/// validating against the system store. Host-name checking is never relaxed.
/// </summary>
public sealed class CaBundle
{
    private readonly X509Certificate2Collection _roots;

    private CaBundle(X509Certificate2Collection roots, string path)
    {
        _roots = roots;
        Path = path;
    }

    /// <summary>The PEM file the bundle was read from, for messages.</summary>
    public string Path { get; }

    public int Count => _roots.Count;

    /// <summary>Reads every <c>CERTIFICATE</c> block of a PEM file.</summary>
    /// <exception cref="KmsPluginException">RootKeyDenied when the file is missing, unreadable or holds no certificate (configuration, not an outage).</exception>
    public static CaBundle Load(string path, string owner)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{owner}: cannot read caFile {path}: {e.Message}", e);
        }

        if (roots.Count == 0)
        {
            throw new KmsPluginException(KmsErrorKind.RootKeyDenied, $"{owner}: caFile {path} holds no PEM CERTIFICATE block");
        }

        return new CaBundle(roots, path);
    }

    /// <summary>
    /// The TLS server-certificate check: accepted when the system store already trusts it, or when the only problem is
    /// an untrusted chain and the chain builds to one of this bundle's certificates. A name mismatch or a missing
    /// certificate is always refused.
    /// </summary>
    public bool Validate(X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        if (errors != SslPolicyErrors.RemoteCertificateChainErrors || certificate is null)
        {
            return false;
        }

        var leaf = certificate as X509Certificate2;
        using var converted = leaf is null ? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()) : null;
        leaf ??= converted!;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_roots);

        // Private CAs rarely publish a CRL or OCSP responder reachable from a control-plane node; the system-store
        // path above keeps the platform's revocation behaviour for public endpoints.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        return chain.Build(leaf);
    }

    /// <summary>An HTTP handler whose TLS trust is the system store plus <paramref name="bundle"/> (or just the system store when null).</summary>
    public static SocketsHttpHandler CreateHandler(CaBundle? bundle)
    {
        var handler = new SocketsHttpHandler
        {
            // Long-lived clients: recycle connections so DNS changes (failover of a private endpoint) are picked up.
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            AutomaticDecompression = System.Net.DecompressionMethods.None,
        };
        if (bundle is not null)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, chain, errors) => bundle.Validate(certificate, chain, errors);
        }

        return handler;
    }
}
