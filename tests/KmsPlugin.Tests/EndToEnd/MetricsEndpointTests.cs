using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Grpc.Core;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Security;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.EndToEnd;

/// <summary>/metrics on the loopback health port, scraped over HTTP and parsed as Prometheus text (docs/metrics.md).</summary>
public sealed class MetricsEndpointTests
{
    private static readonly HashSet<string> Methods = ["Status", "Encrypt", "Decrypt"];
    private static readonly HashSet<string> Codes = [.. Enum.GetNames<StatusCode>()];

    internal static Func<PluginConfig, PluginConfig> WithHealthPort(int port) =>
        c => c with { Health = c.Health with { ListenHost = "127.0.0.1", ListenPort = port } };

    [Fact]
    public async Task Metrics_report_grpc_calls_root_key_calls_kek_cache_key_id_hash_and_probe_after_traffic()
    {
        var port = FreeTcpPort.Next();
        await using var plugin = await PluginHost.StartLocalAsync(adjust: WithHealthPort(port));
        await plugin.WaitForProbeAsync();

        var status = await plugin.Apiserver.StatusAsync();
        var seed = RandomNumberGenerator.GetBytes(32);
        var stored = await plugin.Apiserver.EncryptAsync(seed);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(seed, await plugin.Apiserver.DecryptAsync(stored));
        }

        var rejected = await Assert.ThrowsAsync<RpcException>(() => plugin.Apiserver.EncryptAsync(new byte[600]));
        Assert.Equal(StatusCode.InvalidArgument, rejected.StatusCode);

        var scrape = await PrometheusScrape.GetAsync(port);

        // gRPC calls by api, method and code, counted and timed.
        Assert.Equal("counter", scrape.Types["kms_plugin_grpc_requests_total"]);
        Assert.Equal("histogram", scrape.Types["kms_plugin_grpc_request_duration_seconds"]);
        Assert.Equal(1, scrape.Value("kms_plugin_grpc_requests_total", ("api", "v2"), ("method", "Status"), ("code", "OK")));
        Assert.Equal(1, scrape.Value("kms_plugin_grpc_requests_total", ("api", "v2"), ("method", "Encrypt"), ("code", "OK")));
        Assert.Equal(3, scrape.Value("kms_plugin_grpc_requests_total", ("api", "v2"), ("method", "Decrypt"), ("code", "OK")));
        Assert.Equal(1, scrape.Value("kms_plugin_grpc_requests_total", ("api", "v2"), ("method", "Encrypt"), ("code", "InvalidArgument")));
        Assert.Equal(3, scrape.Value("kms_plugin_grpc_request_duration_seconds_count", ("method", "Decrypt"), ("code", "OK")));
        Assert.Equal(3, scrape.Value("kms_plugin_grpc_request_duration_seconds_bucket", ("method", "Decrypt"), ("code", "OK"), ("le", "+Inf")));

        // Remote root key calls by provider, operation and outcome: the first KEK's wrap and the probe's canary.
        Assert.Equal("counter", scrape.Types["kms_plugin_root_key_requests_total"]);
        Assert.True(scrape.Sum("kms_plugin_root_key_requests_total", ("provider", "local"), ("operation", "wrap"), ("outcome", "ok")) >= 2);
        Assert.True(scrape.Sum("kms_plugin_root_key_requests_total", ("provider", "local"), ("operation", "unwrap"), ("outcome", "ok")) >= 1);
        Assert.True(scrape.Sum("kms_plugin_root_key_request_duration_seconds_count", ("provider", "local"), ("operation", "wrap")) >= 2);

        // The KEK: repeated Decrypts of one seed are cache hits; one KEK made, sealing one seed (the rejected call sealed nothing).
        Assert.Equal(3, scrape.Value("kms_plugin_kek_cache_hits_total"));
        Assert.Equal(0, scrape.Value("kms_plugin_kek_cache_misses_total"));
        Assert.Equal(1, scrape.Value("kms_plugin_kek_cache_size"));
        Assert.Equal(1, scrape.Value("kms_plugin_kek_rotations_total"));
        Assert.Equal(1, scrape.Value("kms_plugin_kek_uses"));
        Assert.InRange(scrape.Value("kms_plugin_kek_age_seconds"), 0, 3600);

        // The key_id as Status reports it, hashed; the probe's verdict.
        Assert.Equal("gauge", scrape.Types["kms_plugin_key_id_info"]);
        Assert.Equal(1, scrape.Value("kms_plugin_key_id_info", ("key_id_hash", KeyIdHash.Of(status.KeyId))));
        Assert.Equal(1, scrape.Value("kms_plugin_root_key_probe_success"));
        Assert.InRange(scrape.Value("kms_plugin_root_key_probe_age_seconds"), 0, 3600);

        // Reload outcomes exist from the start.
        foreach (var outcome in new[] { "applied", "rejected", "unchanged" })
        {
            Assert.Equal(0, scrape.Value("kms_plugin_config_reloads_total", ("outcome", outcome)));
        }

        // Bounded labels only: no raw key_id anywhere, every method and code from the known sets.
        Assert.DoesNotContain(status.KeyId, scrape.Text, StringComparison.Ordinal);
        foreach (var sample in scrape.Samples.Where(s => s.Name.StartsWith("kms_plugin_grpc_", StringComparison.Ordinal)))
        {
            Assert.Contains(sample.Labels["method"], Methods);
            Assert.Contains(sample.Labels["code"], Codes);
        }

        Assert.All(scrape.Samples, s => Assert.StartsWith("kms_plugin_", s.Name, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Two_plugins_in_one_process_report_only_their_own_counts()
    {
        var (portA, portB) = (FreeTcpPort.Next(), FreeTcpPort.Next());
        await using var a = await PluginHost.StartLocalAsync(adjust: WithHealthPort(portA));
        await using var b = await PluginHost.StartLocalAsync(adjust: WithHealthPort(portB));
        for (var i = 0; i < 5; i++)
        {
            await a.Apiserver.StatusAsync();
        }

        var seed = RandomNumberGenerator.GetBytes(32);
        await a.Apiserver.EncryptAsync(seed);
        await a.Apiserver.EncryptAsync(seed);
        Assert.Equal(seed, await b.Apiserver.DecryptAsync(await b.Apiserver.EncryptAsync(seed)));

        var (scrapeA, scrapeB) = (await PrometheusScrape.GetAsync(portA), await PrometheusScrape.GetAsync(portB));
        Assert.Equal(5, scrapeA.Sum("kms_plugin_grpc_requests_total", ("method", "Status")));
        Assert.Equal(2, scrapeA.Sum("kms_plugin_grpc_requests_total", ("method", "Encrypt")));
        Assert.Equal(0, scrapeA.Sum("kms_plugin_grpc_requests_total", ("method", "Decrypt")));
        Assert.Equal(0, scrapeB.Sum("kms_plugin_grpc_requests_total", ("method", "Status")));
        Assert.Equal(1, scrapeB.Sum("kms_plugin_grpc_requests_total", ("method", "Encrypt")));
        Assert.Equal(1, scrapeB.Sum("kms_plugin_grpc_requests_total", ("method", "Decrypt")));
        Assert.Equal(2, scrapeA.Value("kms_plugin_kek_uses"));
        Assert.Equal(1, scrapeB.Value("kms_plugin_kek_uses"));

        // Each reports its own key_id (two local root keys in two directories: two key_ids).
        Assert.Equal(1, scrapeA.Value("kms_plugin_key_id_info", ("key_id_hash", KeyIdHash.Of(a.Envelope.CurrentKeyId))));
        Assert.Equal(1, scrapeB.Value("kms_plugin_key_id_info", ("key_id_hash", KeyIdHash.Of(b.Envelope.CurrentKeyId))));
        Assert.Single(scrapeA.All("kms_plugin_key_id_info"));
    }

    [Fact]
    public async Task Metrics_are_served_on_the_health_port_and_not_on_the_apiservers_socket()
    {
        var port = FreeTcpPort.Next();
        await using var plugin = await PluginHost.StartLocalAsync(adjust: WithHealthPort(port));
        Assert.NotEmpty((await PrometheusScrape.GetAsync(port)).Samples);

        // The same path over the plugin's Unix socket, as HTTP/2 with prior knowledge (how the apiserver connects).
        using var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, token) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(plugin.SocketPath), token);
                return new NetworkStream(socket, ownsSocket: true);
            },
        };
        using var http = new HttpClient(handler);
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://localhost/metrics")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }
}
