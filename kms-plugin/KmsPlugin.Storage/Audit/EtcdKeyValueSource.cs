using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;

namespace KmsPlugin.Storage.Audit;

/// <summary>
/// Reads etcd with the dotnet-etcd client, read-only: only Range calls. Pages are bounded with <c>limit</c> and every
/// page of every prefix is read at the revision of the first page, so an audit is one consistent snapshot even while
/// the apiserver writes (etcd API: RangeRequest.revision). When etcd compacts that revision during a long scan the scan
/// continues at the newest revision and <see cref="SnapshotRestarts"/> says so.
/// </summary>
public sealed class EtcdKeyValueSource : IKeyValueSource, IDisposable
{
    private readonly EtcdClient _client;
    private readonly TimeSpan _requestTimeout;

    private EtcdKeyValueSource(EtcdClient client, TimeSpan requestTimeout, string description)
    {
        _client = client;
        _requestTimeout = requestTimeout;
        Description = description;
    }

    public string Description { get; }

    /// <summary>The revision every page is read at (set by the first page; 0 before).</summary>
    public long Revision { get; private set; }

    /// <summary>How often a scan had to move to a newer revision because etcd compacted the one it was reading.</summary>
    public int SnapshotRestarts { get; private set; }

    public static EtcdKeyValueSource Connect(EtcdConnectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var connection = string.Join(",", options.Endpoints.Select(e => $"{e.Scheme}://{e.Authority}"));
        EtcdClient client;
        if (options.Endpoints[0].Scheme == Uri.UriSchemeHttp)
        {
            if (options.CaCertFile is not null || options.CertFile is not null || options.KeyFile is not null)
            {
                throw new ArgumentException("--cacert/--cert/--key need https:// etcd endpoints");
            }

            client = new EtcdClient(connection, configureChannelOptions: channel =>
            {
                channel.Credentials = ChannelCredentials.Insecure;
                ConfigureRetries(channel);
            });
        }
        else
        {
            var tls = TlsSettings.Load(options);

            // serverName becomes the request authority, hence the TLS SNI name: use the first endpoint's host.
            client = new EtcdClient(connection, tls.Configure, serverName: options.Endpoints[0].Host, configureChannelOptions: ConfigureRetries);
        }

        return new EtcdKeyValueSource(client, options.RequestTimeout, "etcd " + connection);
    }

    /// <summary>
    /// dotnet-etcd retries Unavailable 5 times over about 10 s by default; an operator's one-shot audit should say
    /// "cannot reach etcd" sooner. Range reads are idempotent, so a short retry (leader change) stays safe.
    /// </summary>
    private static void ConfigureRetries(GrpcChannelOptions channel)
    {
        channel.ServiceConfig = new ServiceConfig
        {
            MethodConfigs =
            {
                new MethodConfig
                {
                    Names = { MethodName.Default },
                    RetryPolicy = new Grpc.Net.Client.Configuration.RetryPolicy
                    {
                        MaxAttempts = 3,
                        InitialBackoff = TimeSpan.FromMilliseconds(200),
                        MaxBackoff = TimeSpan.FromSeconds(1),
                        BackoffMultiplier = 2,
                        RetryableStatusCodes = { StatusCode.Unavailable },
                    },
                },
            },
            LoadBalancingConfigs = { new RoundRobinConfig() },
        };
    }

    public async Task<long> CountAsync(string prefix, CancellationToken cancellationToken)
    {
        var key = ByteString.CopyFromUtf8(prefix);
        var response = await _client.GetAsync(new RangeRequest { Key = key, RangeEnd = PrefixEnd(key), CountOnly = true },
            deadline: DateTime.UtcNow + _requestTimeout, cancellationToken: cancellationToken);
        return response.Count;
    }

    public async IAsyncEnumerable<IReadOnlyList<StoredKeyValue>> ReadPagesAsync(string prefix, int pageSize,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        var start = ByteString.CopyFromUtf8(prefix);
        var end = PrefixEnd(start);
        var revision = Revision;
        while (true)
        {
            RangeResponse response;
            try
            {
                response = await _client.GetAsync(new RangeRequest { Key = start, RangeEnd = end, Limit = pageSize, Revision = revision },
                    deadline: DateTime.UtcNow + _requestTimeout, cancellationToken: cancellationToken);
            }
            catch (RpcException e) when (revision != 0 && e.StatusCode == StatusCode.OutOfRange)
            {
                // "etcdserver: mvcc: required revision has been compacted" (rpctypes.ErrGRPCCompacted): go on at the
                // newest revision; the report says the snapshot moved.
                revision = 0;
                SnapshotRestarts++;
                continue;
            }

            if (revision == 0)
            {
                // The header carries the store's current revision (also on reads of an older one): pin it once.
                revision = response.Header.Revision;
                Revision = revision;
            }

            if (response.Kvs.Count == 0)
            {
                yield break;
            }

            var page = new StoredKeyValue[response.Kvs.Count];
            for (var i = 0; i < page.Length; i++)
            {
                page[i] = new StoredKeyValue(response.Kvs[i].Key.Memory, response.Kvs[i].Value.Memory);
            }

            yield return page;
            if (!response.More)
            {
                yield break;
            }

            // The next page starts just after the last key of this one (the smallest key greater than it).
            var last = response.Kvs[^1].Key.Span;
            var next = new byte[last.Length + 1];
            last.CopyTo(next);
            start = ByteString.CopyFrom(next);
        }
    }

    /// <summary>clientv3.GetPrefixRangeEnd: the prefix with its last byte below 0xff incremented, later bytes dropped.</summary>
    internal static ByteString PrefixEnd(ByteString prefix)
    {
        var end = prefix.ToByteArray();
        for (var i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] < 0xff)
            {
                end[i]++;
                return ByteString.CopyFrom(end, 0, i + 1);
            }
        }

        return ByteString.CopyFrom(0); // every key: etcd's "\0" range end
    }

    public void Dispose() => _client.Dispose();

    /// <summary>TLS to etcd as etcdctl does it: a custom CA, an optional client certificate, and the endpoint host names.</summary>
    private sealed class TlsSettings
    {
        private readonly X509Certificate2Collection? _roots;
        private readonly X509Certificate2? _clientCertificate;
        private readonly IReadOnlyList<string> _hosts;

        private TlsSettings(X509Certificate2Collection? roots, X509Certificate2? clientCertificate, IReadOnlyList<string> hosts)
        {
            _roots = roots;
            _clientCertificate = clientCertificate;
            _hosts = hosts;
        }

        public static TlsSettings Load(EtcdConnectionOptions options)
        {
            X509Certificate2Collection? roots = null;
            if (options.CaCertFile is not null)
            {
                roots = [];
                roots.ImportFromPemFile(options.CaCertFile);
                if (roots.Count == 0)
                {
                    throw new ArgumentException($"--cacert {options.CaCertFile} holds no PEM certificate");
                }
            }

            if ((options.CertFile is null) != (options.KeyFile is null))
            {
                throw new ArgumentException("--cert and --key go together");
            }

            var client = options.CertFile is null ? null : X509Certificate2.CreateFromPemFile(options.CertFile, options.KeyFile);
            return new TlsSettings(roots, client, [.. options.Endpoints.Select(e => e.IdnHost)]);
        }

        public void Configure(SslClientAuthenticationOptions ssl)
        {
            if (_clientCertificate is not null)
            {
                ssl.ClientCertificates = [_clientCertificate];
            }

            ssl.RemoteCertificateValidationCallback = Validate;
        }

        private bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
        {
            if (certificate is not X509Certificate2 server)
            {
                return false;
            }

            // The request authority is one endpoint's name whichever endpoint the balancer picked, so the name is
            // checked here against every configured endpoint instead of by the TLS stack.
            if (!_hosts.Any(host => server.MatchesHostname(host)))
            {
                return false;
            }

            if (_roots is null)
            {
                return (errors & ~SslPolicyErrors.RemoteCertificateNameMismatch) == SslPolicyErrors.None;
            }

            using var custom = new X509Chain();
            custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            custom.ChainPolicy.CustomTrustStore.AddRange(_roots);
            custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            custom.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.1")); // serverAuth
            if (chain is not null)
            {
                // Intermediates the server sent.
                foreach (var element in chain.ChainElements)
                {
                    custom.ChainPolicy.ExtraStore.Add(element.Certificate);
                }
            }

            return custom.Build(server);
        }
    }
}
