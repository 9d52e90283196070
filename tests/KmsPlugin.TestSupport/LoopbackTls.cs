using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KmsPlugin.TestSupport;

/// <summary>
/// TLS for loopback fakes (Azure.Core refuses bearer tokens over plain http): a throw-away CA made at test start and
/// a server certificate it signs for <c>127.0.0.1</c>, <c>::1</c> and <c>localhost</c>. Nothing is installed in any
/// system store: clients trust the CA only where a test says so — through the plugin's own <c>caFile</c> option
/// (<see cref="WriteCaFile"/>), or a handler from <see cref="CreateTrustingHandler"/>.
/// </summary>
public sealed class LoopbackTls : IDisposable
{
    private static readonly Lazy<LoopbackTls> SharedInstance = new(() => new LoopbackTls());

    public LoopbackTls()
    {
        var now = DateTimeOffset.UtcNow;
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=kms-plugin test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var ca = caRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));

        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serverRequest = new CertificateRequest("CN=localhost", serverKey, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        names.AddDnsName("localhost");
        serverRequest.CertificateExtensions.Add(names.Build());
        serverRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        serverRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var issued = serverRequest.Create(ca, now.AddMinutes(-5), now.AddDays(1), RandomNumberGenerator.GetBytes(12));
        using var withKey = issued.CopyWithPrivateKey(serverKey);

        // Re-import through PKCS#12 so SslStream on Linux gets a certificate whose key it can use.
        ServerCertificate = X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
        CaCertificate = X509CertificateLoader.LoadCertificate(ca.RawData);
        CaPem = CaCertificate.ExportCertificatePem() + "\n";
    }

    /// <summary>One CA per test process (key generation is cheap, but there is no reason to repeat it).</summary>
    public static LoopbackTls Shared => SharedInstance.Value;

    /// <summary>The server certificate (with its private key) for Kestrel.</summary>
    public X509Certificate2 ServerCertificate { get; }

    /// <summary>The CA certificate (public part only).</summary>
    public X509Certificate2 CaCertificate { get; }

    public string CaPem { get; }

    /// <summary>Writes the CA as a PEM file (a plugin <c>caFile</c>) and returns its path.</summary>
    public string WriteCaFile(TempDirectory directory, string name = "test-ca.pem")
    {
        ArgumentNullException.ThrowIfNull(directory);
        var path = directory.FilePath(name);
        File.WriteAllText(path, CaPem);
        return path;
    }

    /// <summary>A client handler that trusts this CA and nothing else (test clients of the fakes).</summary>
    public SocketsHttpHandler CreateTrustingHandler()
    {
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
        {
            if (certificate is null)
            {
                return false;
            }

            using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(CaCertificate);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return chain.Build(leaf);
        };
        return handler;
    }

    public void Dispose()
    {
        ServerCertificate.Dispose();
        CaCertificate.Dispose();
    }
}
