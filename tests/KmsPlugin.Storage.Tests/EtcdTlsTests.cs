using KmsPlugin.TestSupport;

namespace KmsPlugin.Storage.Tests;

/// <summary>etcd as kubeadm runs it: HTTPS with client certificates (the apiserver's --etcd-cafile/--etcd-certfile/--etcd-keyfile).</summary>
public sealed class EtcdTlsTests(TlsEtcdFixture fixture) : IClassFixture<TlsEtcdFixture>
{
    private EtcdServer Etcd => fixture.Etcd;

    [Fact]
    public async Task Audit_reads_a_TLS_etcd_with_the_CA_and_a_client_certificate()
    {
        var tls = Etcd.Tls!;
        var run = await AuditRunner.RunAsync("--etcd-endpoints", Etcd.Endpoint, "--cacert", tls.CaCertFile, "--cert", tls.ClientCertFile, "--key", tls.ClientKeyFile,
            "--resources", "secrets", "--output", "json");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(2, run.Json.GetProperty("scanned").GetInt64());
        Assert.Equal(1, run.Resource("secrets").GetProperty("prefixes").GetProperty("aescbc:key1").GetInt64());
    }

    [Fact]
    public async Task Audit_refuses_an_etcd_whose_certificate_the_CA_did_not_sign()
    {
        using var dir = new TempDirectory();
        var stranger = EtcdTls.Create(dir);
        var tls = Etcd.Tls!;
        var run = await AuditRunner.RunAsync("--etcd-endpoints", Etcd.Endpoint, "--cacert", stranger.CaCertFile, "--cert", tls.ClientCertFile, "--key", tls.ClientKeyFile);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("kms-plugin audit: etcd https://127.0.0.1:", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Audit_without_a_client_certificate_is_rejected_by_etcd()
    {
        var run = await AuditRunner.RunAsync("--etcd-endpoints", Etcd.Endpoint, "--cacert", Etcd.Tls!.CaCertFile);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("kms-plugin audit: etcd https://127.0.0.1:", run.Error, StringComparison.Ordinal);
    }
}

/// <summary>One HTTPS etcd with client-certificate auth, holding two secrets under /registry.</summary>
public sealed class TlsEtcdFixture : IAsyncLifetime
{
    private EtcdServer? _etcd;

    public EtcdServer Etcd => _etcd!;

    public async Task InitializeAsync()
    {
        _etcd = await EtcdServer.StartAsync(tls: true);
        await Etcd.PutAsync("/registry/secrets/a/one", ApiserverStorageWriter.KubernetesObject("one"));
        await Etcd.PutAsync("/registry/secrets/a/two", [.. "k8s:enc:aescbc:v1:key1:"u8, 1, 2, 3]);
    }

    public async Task DisposeAsync()
    {
        if (_etcd is not null)
        {
            await _etcd.DisposeAsync();
        }
    }
}
