using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;

namespace KmsPlugin.TestSupport;

/// <summary>
/// A real etcd (Debian package <c>etcd-server</c>) started as a child process on loopback, on free ports, with a
/// temporary data directory; killed and removed on dispose. No systemd: the flags are those of
/// reference/feasibility.md section 6. With <see cref="EtcdTls"/> it serves HTTPS and requires client certificates,
/// as a kubeadm etcd does. Never skipped: without the binary it fails and says what to install.
/// </summary>
public sealed class EtcdServer : IAsyncDisposable
{
    private const int MaxStartAttempts = 3;
    private readonly Process _process;
    private readonly TempDirectory _directory;
    private readonly StringBuilder _log;
    private readonly Lazy<EtcdClient> _client;

    private EtcdServer(Process process, TempDirectory directory, StringBuilder log, Uri clientUrl, EtcdTls? tls)
    {
        _process = process;
        _directory = directory;
        _log = log;
        ClientUrl = clientUrl;
        Tls = tls;
        _client = new Lazy<EtcdClient>(CreateClient);
    }

    /// <summary>The client URL, e.g. <c>http://127.0.0.1:40123</c>.</summary>
    public Uri ClientUrl { get; }

    /// <summary>The URL as <c>--etcd-endpoints</c> takes it.</summary>
    public string Endpoint => ClientUrl.GetLeftPart(UriPartial.Authority);

    /// <summary>The certificates (CA, client) when the server runs with TLS.</summary>
    public EtcdTls? Tls { get; }

    public static string FindBinary()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Append("/usr/bin").Append("/usr/local/bin"))
        {
            var candidate = Path.Combine(dir, "etcd");
            if (dir.Length > 0 && File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("etcd is not installed: the audit tests run a real etcd. Install it with: apt-get install -y etcd-server");
    }

    /// <summary>Starts etcd and waits until <c>/health</c> says it is serving.</summary>
    public static async Task<EtcdServer> StartAsync(bool tls = false)
    {
        var binary = FindBinary();
        Exception? last = null;
        for (var attempt = 0; attempt < MaxStartAttempts; attempt++)
        {
            // Free ports are found by binding port 0 and releasing it; another process may take one in between,
            // in which case etcd exits at once and the next attempt picks new ports.
            var directory = new TempDirectory();
            var certificates = tls ? EtcdTls.Create(directory) : null;
            var (clientPort, peerPort) = (FreePort(), FreePort());
            var scheme = tls ? "https" : "http";
            var clientUrl = new Uri($"{scheme}://127.0.0.1:{clientPort}");
            var peerUrl = $"http://127.0.0.1:{peerPort}";
            var start = new ProcessStartInfo(binary)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var arg in new[]
                     {
                         "--name", "audit-test", "--data-dir", directory.FilePath("data"),
                         "--listen-client-urls", clientUrl.GetLeftPart(UriPartial.Authority),
                         "--advertise-client-urls", clientUrl.GetLeftPart(UriPartial.Authority),
                         "--listen-peer-urls", peerUrl, "--initial-advertise-peer-urls", peerUrl,
                         "--initial-cluster", "audit-test=" + peerUrl, "--initial-cluster-state", "new",
                         "--logger", "zap", "--log-level", "warn",
                     })
            {
                start.ArgumentList.Add(arg);
            }

            if (certificates is not null)
            {
                foreach (var arg in new[]
                         {
                             "--cert-file", certificates.ServerCertFile, "--key-file", certificates.ServerKeyFile,
                             "--client-cert-auth", "--trusted-ca-file", certificates.CaCertFile,
                         })
                {
                    start.ArgumentList.Add(arg);
                }
            }

            var log = new StringBuilder();
            var process = Process.Start(start) ?? throw new InvalidOperationException("could not start etcd");
            process.OutputDataReceived += (_, e) => Append(log, e.Data);
            process.ErrorDataReceived += (_, e) => Append(log, e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var server = new EtcdServer(process, directory, log, clientUrl, certificates);
            try
            {
                await server.WaitHealthyAsync(TimeSpan.FromSeconds(30));
                return server;
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException)
            {
                last = e;
                await server.DisposeAsync();
            }
        }

        throw new InvalidOperationException($"etcd did not start after {MaxStartAttempts} attempts", last);
    }

    /// <summary>Writes a raw value, as kube-apiserver's etcd3 store does (one Put of the transformed bytes).</summary>
    public async Task PutAsync(string key, byte[] value)
    {
        ArgumentNullException.ThrowIfNull(value);
        await _client.Value.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFrom(value) });
    }

    public async Task<byte[]> GetAsync(string key)
    {
        var response = await _client.Value.GetAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(key) });
        return response.Kvs.Count == 0 ? throw new KeyNotFoundException(key) : response.Kvs[0].Value.ToByteArray();
    }

    /// <summary>The current revision (every write increments it).</summary>
    public async Task<long> RevisionAsync()
    {
        var response = await _client.Value.GetAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("\0"), CountOnly = true });
        return response.Header.Revision;
    }

    /// <summary>Compacts history up to the current revision, as kube-apiserver does every 5 minutes.</summary>
    public async Task CompactAsync()
    {
        await _client.Value.CompactAsync(new CompactionRequest { Revision = await RevisionAsync(), Physical = true });
    }

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    private EtcdClient CreateClient()
    {
        if (Tls is null)
        {
            return new EtcdClient(Endpoint, configureChannelOptions: o => o.Credentials = global::Grpc.Core.ChannelCredentials.Insecure);
        }

        var client = X509Certificate2.CreateFromPemFile(Tls.ClientCertFile, Tls.ClientKeyFile);
        return new EtcdClient(Endpoint, ssl =>
        {
            ssl.ClientCertificates = [client];
            ssl.RemoteCertificateValidationCallback = (_, certificate, _, _) => Tls.IsSignedByCa(certificate);
        }, serverName: "127.0.0.1");
    }

    private async Task WaitHealthyAsync(TimeSpan timeout)
    {
        using var handler = new HttpClientHandler();
        if (Tls is not null)
        {
            handler.ServerCertificateCustomValidationCallback = (_, certificate, _, _) => Tls.IsSignedByCa(certificate);
            handler.ClientCertificates.Add(X509Certificate2.CreateFromPemFile(Tls.ClientCertFile, Tls.ClientKeyFile));
        }

        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(2) };
        var until = DateTime.UtcNow + timeout;
        Exception? lastError = null;
        while (DateTime.UtcNow < until)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"etcd exited with {_process.ExitCode}:\n{Log}");
            }

            try
            {
                var body = await http.GetStringAsync(new Uri(ClientUrl, "/health"));
                if (body.Contains("\"health\":\"true\"", StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                lastError = e; // not listening or not answering yet
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"etcd did not become healthy on {ClientUrl} (last error: {lastError?.GetBaseException().Message}):\n{Log}");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static void Append(StringBuilder log, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (log)
        {
            if (log.Length < 256 * 1024)
            {
                log.AppendLine(line);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_client.IsValueCreated)
        {
            _client.Value.Dispose();
        }

        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        _directory.Dispose();
    }
}
