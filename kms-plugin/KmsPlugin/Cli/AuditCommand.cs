using System.Globalization;
using Grpc.Core;
using KmsPlugin.Client;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.Hosting;
using KmsPlugin.Storage.Audit;

namespace KmsPlugin.Cli;

/// <summary>
/// <c>kms-plugin audit</c>: which storage formats and which key_ids hold the apiserver's data in etcd, so an operator
/// knows when an old root key can be retired (docs/rotation.md). Reads etcd only; writes nothing anywhere.
/// </summary>
public static class AuditCommand
{
    public const string Help = """
        Usage: kms-plugin audit --etcd-endpoints URLS [--cacert FILE --cert FILE --key FILE] [--prefix /registry]
                                [--resources secrets,configmaps] [--output table|json] [--config FILE]
                                [--verify [--listen unix:///PATH] [--provider NAME] [--sample 10]]
                                [--require-key-id KEY_ID] [--page-size 500] [--timeout 3s]

        Reads kube-apiserver's data in etcd (read-only, paged range reads at one revision) and reports per resource how
        each value is stored: plaintext (no k8s:enc: prefix; also what the identity provider writes), aescbc, aesgcm,
        secretbox, kms:v1, kms:v2:<provider name>. KMS v2 values are decoded: counts per key_id (with the sha256: hash
        kube-apiserver's metrics use), per DEK source type, and distinct DEK sources. Values and plaintext are never
        printed. A value that cannot be decoded is listed as corrupted; the scan goes on.

        Options:
          --etcd-endpoints URLS    comma-separated http(s)://host:port (kube-apiserver's --etcd-servers)
          --cacert/--cert/--key    PEM files for TLS to etcd (kube-apiserver's --etcd-cafile/--etcd-certfile/--etcd-keyfile)
          --prefix P               kube-apiserver's --etcd-prefix (default /registry)
          --resources LIST         resources to scan, e.g. secrets,configmaps (group/resource for API groups: the etcd path
                                   segment(s) after the prefix); '*' or absent = everything under the prefix
          --output table|json      report format (default table); progress goes to stderr
          --config FILE            the plugin's configuration: each root key is opened to learn its key_id, so key_ids
                                   are shown as current (primary), old (decrypt-only, another epoch, or an older
                                   version of a versioned key) or unknown (not configured)
          --verify                 decrypt through the plugin: one Decrypt per distinct encrypted DEK source, then
                                   HKDF-SHA256 + AES-GCM with the etcd key as AAD on a sample of objects per DEK source
          --listen unix:///PATH    the plugin's socket for --verify (default: the --config file's listen)
          --provider NAME          verify only values of this EncryptionConfiguration kms provider name
          --sample N               objects opened per DEK source with --verify (default 10; 0 = all)
          --require-key-id ID      exit 1 unless every scanned value is a KMS v2 value under key_id ID (needs --resources)
          --page-size N            keys per range read (default 500)
          --timeout D              deadline of each plugin call (default 3s, as kube-apiserver)

        Exit 0 when the scan completed and, if given, --require-key-id holds and --verify found nothing unreadable or
        corrupted; 1 otherwise (or when etcd or the plugin cannot be reached); 2 for bad usage or configuration.
        """;

    public static Dictionary<string, bool> Options { get; } = new()
    {
        ["--etcd-endpoints"] = true,
        ["--cacert"] = true,
        ["--cert"] = true,
        ["--key"] = true,
        ["--prefix"] = true,
        ["--resources"] = true,
        ["--output"] = true,
        ["--config"] = true,
        ["--verify"] = false,
        ["--listen"] = true,
        ["--provider"] = true,
        ["--sample"] = true,
        ["--require-key-id"] = true,
        ["--page-size"] = true,
        ["--timeout"] = true,
    };

    private static readonly TimeSpan EtcdRequestTimeout = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(CommandLine line, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(line);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var json = (line.Value("--output") ?? "table") switch
        {
            "table" => false,
            "json" => true,
            var other => throw new UsageException($"--output must be table or json, not \"{other}\""),
        };
        var connection = ConnectionOptions(line);
        var options = new AuditOptions
        {
            Prefix = line.Value("--prefix") ?? "/registry",
            Resources = Resources(line),
            PageSize = Integer(line, "--page-size", 500, 1, 10_000),
            VerifySample = Integer(line, "--sample", 10, 0, int.MaxValue),
            VerifyProvider = line.Value("--provider"),
            RequireKeyId = line.Value("--require-key-id"),
        };
        if (options.RequireKeyId is not null && options.Resources is null && !line.Has("--resources"))
        {
            throw new UsageException("--require-key-id needs --resources: name the resources your EncryptionConfiguration encrypts (or '*' for all), "
                + "so that resources the apiserver stores in plaintext on purpose do not fail the check");
        }

        if (!line.Has("--verify") && (line.Has("--provider") || line.Has("--sample") || line.Has("--listen")))
        {
            throw new UsageException("--listen, --provider and --sample only apply with --verify");
        }

        PluginConfig? config = null;
        using var openedKeys = new OpenedRootKeys();
        if (line.Value("--config") is { } configFile)
        {
            config = ConfigLoader.LoadFile(configFile, line.Value("--listen"));
            options = options with
            {
                ConfiguredKeyIds = await ConfiguredKeyIdsAsync(config, openedKeys, error),
                RecognizeRootKey = openedKeys.Recognizing,
            };
        }

        using var source = EtcdKeyValueSource.Connect(connection);
        global::Grpc.Net.Client.GrpcChannel? channel = null;
        try
        {
            PluginDekSourceDecryptor? decryptor = null;
            if (line.Has("--verify"))
            {
                var socket = line.Value("--listen") is { } listen ? ConfigLoader.ParseListen("--listen", listen)
                    : config?.SocketPath ?? throw new UsageException("--verify needs the plugin's socket: --listen unix:///PATH or --config FILE");
                channel = UnixSocketChannel.Create(socket);
                var apiserver = new ApiserverEmulator(channel, Timeout(line));
                if (await PluginStatusProblemAsync(apiserver, socket) is { } problem)
                {
                    await error.WriteLineAsync("kms-plugin audit: " + problem);
                    return Commands.Failed;
                }

                decryptor = new PluginDekSourceDecryptor(apiserver);
            }

            var report = await new AuditScanner(source, options, decryptor, error).RunAsync(cancellationToken);
            if (json)
            {
                await using var stdout = new MemoryStream();
                AuditJsonWriter.Write(report, stdout);
                await output.WriteLineAsync(System.Text.Encoding.UTF8.GetString(stdout.ToArray()));
            }
            else
            {
                AuditTableWriter.Write(report, output);
            }

            return report.Passed ? Commands.Ok : Commands.Failed;
        }
        catch (RpcException e)
        {
            await error.WriteLineAsync($"kms-plugin audit: {source.Description}: {e.StatusCode}: {e.Status.Detail}");
            return Commands.Failed;
        }
        finally
        {
            channel?.Dispose();
        }
    }

    private static EtcdConnectionOptions ConnectionOptions(CommandLine line)
    {
        var endpoints = line.Value("--etcd-endpoints") ?? throw new UsageException("--etcd-endpoints is required, e.g. https://127.0.0.1:2379");
        try
        {
            var parsed = EtcdConnectionOptions.ParseEndpoints(endpoints);
            if (parsed[0].Scheme == Uri.UriSchemeHttp && (line.Has("--cacert") || line.Has("--cert") || line.Has("--key")))
            {
                throw new UsageException("--cacert/--cert/--key need https:// etcd endpoints");
            }

            foreach (var option in new[] { "--cacert", "--cert", "--key" })
            {
                if (line.Value(option) is { } file && !File.Exists(file))
                {
                    throw new UsageException($"{option} {file}: no such file");
                }
            }

            if (line.Has("--cert") != line.Has("--key"))
            {
                throw new UsageException("--cert and --key go together");
            }

            return new EtcdConnectionOptions(parsed, line.Value("--cacert"), line.Value("--cert"), line.Value("--key"), EtcdRequestTimeout);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }

    private static List<string>? Resources(CommandLine line)
    {
        if (line.Value("--resources") is not { } text || text.Trim() == "*")
        {
            return null;
        }

        var resources = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(r => r.Trim('/')).Distinct().ToList();
        foreach (var resource in resources)
        {
            if (resource.Length == 0 || resource.Contains('*', StringComparison.Ordinal) || resource.Split('/').Any(s => s.Length == 0 || s is "." or ".."))
            {
                throw new UsageException($"--resources: \"{resource}\" is not a resource name (e.g. secrets, or apiregistration.k8s.io/apiservices)");
            }
        }

        return resources.Count == 0 ? throw new UsageException("--resources is empty") : resources;
    }

    private static int Integer(CommandLine line, string option, int fallback, int min, int max)
    {
        if (line.Value(option) is not { } text)
        {
            return fallback;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new UsageException($"{option} must be a whole number from {min} to {max}, got \"{text}\"");
    }

    private static TimeSpan Timeout(CommandLine line)
    {
        var timeout = TimeSpan.FromSeconds(3);
        if (line.Value("--timeout") is { } text && (!GoDuration.TryParse(text, out timeout) || timeout <= TimeSpan.Zero))
        {
            throw new UsageException($"--timeout must be a positive duration such as 3s, got \"{text}\"");
        }

        return timeout;
    }

    /// <summary>
    /// Opens each configured root key to learn its key_id (as doctor does) and, for the rest of the audit, to recognise
    /// wraps of its older versions (<see cref="IRootKey.Recognizes"/>, local); the caller disposes <paramref name="opened"/>.
    /// </summary>
    private static async Task<List<ConfiguredKeyId>> ConfiguredKeyIdsAsync(PluginConfig config, OpenedRootKeys opened, TextWriter error)
    {
        var keyIds = new List<ConfiguredKeyId>();
        for (var i = 0; i < config.RootKeys.Count; i++)
        {
            var entry = config.RootKeys[i];
            try
            {
                var key = RootKeyFactory.Create(entry, CsprngRandomSource.Instance);
                opened.Add(key, entry.Name);
                keyIds.Add(new ConfiguredKeyId(key.KeyId, entry.Name, i == 0));
            }
            catch (KmsPluginException e)
            {
                await error.WriteLineAsync($"kms-plugin audit: warning: root key {entry.Name} ({entry.Provider}) could not be opened ({e.Kind}: {e.Message}); "
                    + "values under its key_id will show as unknown");
            }
        }

        // The primary's reported key_id carries its epoch (stateDirectory/key-ids.json, read only): that is "current".
        if (keyIds.Count > 0 && keyIds[0].Primary && config.StateDirectory is { } state && File.Exists(Path.Combine(state, KeyIdHistory.FileName)))
        {
            var additional = keyIds.Skip(1).Where(k => config.RootKeys.FirstOrDefault(r => r.Name == k.RootKeyName)?.Role == RootKeyRole.AdditionalWrap)
                .Select(k => k.KeyId).ToList();
            keyIds[0] = keyIds[0] with { KeyId = KeyIdHistory.Open(state).Peek(keyIds[0].KeyId, additional) };
        }

        return keyIds;
    }

    private static async Task<string?> PluginStatusProblemAsync(ApiserverEmulator apiserver, string socket)
    {
        try
        {
            var status = await apiserver.StatusAsync();
            return ApiserverEmulator.CheckStatus(status) is { } invalid ? $"the plugin at {socket} gave an invalid Status: {invalid}" : null;
        }
        catch (RpcException e)
        {
            return $"the plugin at {socket} does not answer Status ({e.StatusCode}: {e.Status.Detail}); --verify needs it running";
        }
    }

    /// <summary>The configured root keys, open for the whole audit; disposed with it.</summary>
    private sealed class OpenedRootKeys : IDisposable
    {
        private readonly List<(IRootKey Key, string Name)> _keys = [];

        public void Add(IRootKey key, string name) => _keys.Add((key, name));

        /// <summary>
        /// The configured root key that recognises a stored value's wrap, as Decrypt would pick it (a key_id of an older
        /// version of a versioned key, which the configuration names only by its current version), or null.
        /// </summary>
        public string? Recognizing(string keyId, ReadOnlyMemory<byte> ciphertext, IReadOnlyDictionary<string, ReadOnlyMemory<byte>> annotations)
        {
            foreach (var (wrapKeyId, wrap) in StoredRootKeyWraps.Of(keyId, ciphertext, annotations))
            {
                foreach (var (key, name) in _keys)
                {
                    if (key.Recognizes(wrapKeyId, wrap.Span))
                    {
                        return name;
                    }
                }
            }

            return null;
        }

        public void Dispose()
        {
            foreach (var (key, _) in _keys)
            {
                key.Dispose();
            }
        }
    }
}
