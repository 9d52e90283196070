using System.Globalization;
using System.Net;
using System.Text;
using KmsPlugin.Core.Envelope;
using Microsoft.Extensions.Logging;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace KmsPlugin.Configuration;

/// <summary>
/// Reads and validates the YAML configuration. Unknown fields are errors (a typo in a security product's config
/// must not silently fall back to a default), and every error names its field.
/// </summary>
public static class ConfigLoader
{
    public const string ListenScheme = "unix://";

    /// <summary>sun_path is 108 bytes on Linux, including the terminating NUL.</summary>
    public const int MaxSocketPathBytes = 107;

    public static readonly string[] Providers = ["local", "pkcs11"];

    public static PluginConfig LoadFile(string path, string? listenOverride = null)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException("--config", $"cannot read {path}: {e.Message}");
        }

        return Parse(text, Path.GetDirectoryName(Path.GetFullPath(path)) ?? "/", listenOverride);
    }

    /// <summary>Parses configuration text; relative file paths are resolved against <paramref name="baseDirectory"/>.</summary>
    public static PluginConfig Parse(string yaml, string baseDirectory, string? listenOverride = null)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new ConfigException($"line {e.Start.Line}", "not valid YAML: " + e.Message);
        }

        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            throw new ConfigException("(root)", "the configuration must be one YAML mapping");
        }

        var top = new Node(root, "");
        top.AllowOnly("listen", "socketGroup", "statusVersion", "kek", "rootKeys", "health", "logging", "rootKeyTimeout", "shutdownTimeout");

        var listen = listenOverride ?? top.String("listen") ?? throw new ConfigException("listen", "is required (e.g. unix:///var/run/kmsplugin/kms.sock)");
        var config = new PluginConfig
        {
            SocketPath = ParseListen(listenOverride is null ? "listen" : "--listen", listen),
            SocketGroup = top.String("socketGroup") is { } group ? RequireGroupName("socketGroup", group) : null,
            StatusVersion = top.String("statusVersion") is { } version ? OneOf("statusVersion", version, "v2", "v2beta1") : "v2",
            Kek = ParseKek(top.Mapping("kek")),
            RootKeys = ParseRootKeys(top, baseDirectory),
            Health = ParseHealth(top.Mapping("health")),
            Logging = ParseLogging(top.Mapping("logging")),
            RootKeyTimeout = top.Duration("rootKeyTimeout", TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(1)),
            ShutdownTimeout = top.Duration("shutdownTimeout", TimeSpan.FromSeconds(15), TimeSpan.Zero, TimeSpan.FromMinutes(5)),
        };
        return config;
    }

    /// <summary>kube-apiserver accepts only unix:// endpoints (k8s.io/kms pkg/util ParseEndpoint keeps the URL path).</summary>
    public static string ParseListen(string field, string listen)
    {
        if (!listen.StartsWith(ListenScheme, StringComparison.Ordinal))
        {
            throw new ConfigException(field, $"must be a unix:// URL like unix:///var/run/kmsplugin/kms.sock, got \"{listen}\"");
        }

        var path = listen[ListenScheme.Length..];
        if (path.StartsWith("/@", StringComparison.Ordinal))
        {
            throw new ConfigException(field, "abstract sockets are not supported: file permissions cannot protect them; use a filesystem path");
        }

        if (!path.StartsWith('/'))
        {
            throw new ConfigException(field, $"the socket path must be absolute (unix:///path), got \"{path}\"");
        }

        if (path.EndsWith('/'))
        {
            throw new ConfigException(field, "the socket path names a directory; add a file name such as kms.sock");
        }

        if (Encoding.UTF8.GetByteCount(path) > MaxSocketPathBytes)
        {
            throw new ConfigException(field, $"the socket path is longer than the {MaxSocketPathBytes} bytes a Unix socket address allows");
        }

        return path;
    }

    private static KekConfig ParseKek(Node? kek)
    {
        if (kek is null)
        {
            return new KekConfig();
        }

        kek.AllowOnly("maxUses", "maxAge", "cacheSize");
        return new KekConfig
        {
            MaxUses = kek.Long("maxUses", 1L << 21, 1, EnvelopeOptions.HardMaxUses),
            // KEP-3299 asks plugins to rotate the KEK at least every 90 days.
            MaxAge = kek.Duration("maxAge", TimeSpan.FromDays(7), TimeSpan.FromMinutes(1), TimeSpan.FromDays(90)),
            CacheSize = (int)kek.Long("cacheSize", 1000, 1, 1_000_000),
        };
    }

    private static List<RootKeyConfig> ParseRootKeys(Node top, string baseDirectory)
    {
        var list = top.Sequence("rootKeys");
        if (list is null || list.Count == 0)
        {
            throw new ConfigException("rootKeys", "at least one root key is required; the first is the primary");
        }

        var keys = new List<RootKeyConfig>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in list)
        {
            var name = entry.String("name") ?? throw new ConfigException(entry.Field("name"), "is required");
            RequireDnsLabel(entry.Field("name"), name);
            if (!names.Add(name))
            {
                throw new ConfigException(entry.Field("name"), $"\"{name}\" is used by more than one root key");
            }

            var provider = entry.String("provider") ?? throw new ConfigException(entry.Field("provider"), $"is required (one of {string.Join(", ", Providers)})");
            OneOf(entry.Field("provider"), provider, Providers);
            entry.AllowOnly("name", "provider", provider);
            var settings = entry.Mapping(provider) ?? throw new ConfigException(entry.Field(provider), $"is required for provider {provider}");
            keys.Add(provider switch
            {
                "local" => new RootKeyConfig { Name = name, Provider = provider, Local = ParseLocal(settings, baseDirectory) },
                "pkcs11" => new RootKeyConfig { Name = name, Provider = provider, Pkcs11 = ParsePkcs11(settings, baseDirectory) },
                _ => throw new ConfigException(entry.Field("provider"), "unsupported"),
            });
        }

        return keys;
    }

    private static LocalRootKeyConfig ParseLocal(Node local, string baseDirectory)
    {
        local.AllowOnly("keyFile", "create");
        var file = local.String("keyFile") ?? throw new ConfigException(local.Field("keyFile"), "is required");
        return new LocalRootKeyConfig(Path.GetFullPath(file, baseDirectory), local.Bool("create", false));
    }

    private static Pkcs11RootKeyConfig ParsePkcs11(Node pkcs11, string baseDirectory)
    {
        pkcs11.AllowOnly("library", "tokenLabel", "keyLabel", "keyId", "pinFile", "sessionPoolSize");
        var library = pkcs11.String("library") ?? throw new ConfigException(pkcs11.Field("library"), "is required (e.g. /usr/lib/softhsm/libsofthsm2.so)");
        if (!Path.IsPathRooted(library))
        {
            throw new ConfigException(pkcs11.Field("library"), "must be an absolute path: a relative name would be searched for in the library path");
        }

        var token = pkcs11.String("tokenLabel") ?? throw new ConfigException(pkcs11.Field("tokenLabel"), "is required (slot ids change; tokens are found by label)");
        var keyLabel = pkcs11.String("keyLabel");
        var keyId = pkcs11.String("keyId");
        if (keyLabel is null && keyId is null)
        {
            throw new ConfigException(pkcs11.Field("keyLabel"), "keyLabel or keyId (CKA_ID in hex) is required");
        }

        if (keyId is not null && (keyId.Length % 2 != 0 || !keyId.All(char.IsAsciiHexDigit)))
        {
            throw new ConfigException(pkcs11.Field("keyId"), "must be the CKA_ID in hex, e.g. 01 or a1b2");
        }

        var pinFile = pkcs11.String("pinFile") ?? throw new ConfigException(pkcs11.Field("pinFile"), "is required: the user PIN is read from a file, never from the command line or this file");
        return new Pkcs11RootKeyConfig(library, token, keyLabel, keyId, Path.GetFullPath(pinFile, baseDirectory),
            (int)pkcs11.Long("sessionPoolSize", 4, 1, 64));
    }

    private static HealthConfig ParseHealth(Node? health)
    {
        if (health is null)
        {
            return new HealthConfig();
        }

        health.AllowOnly("listen", "probeInterval");
        string? host = null;
        var port = 0;
        if (health.String("listen") is { } listen)
        {
            (host, port) = ParseLoopbackEndpoint(health.Field("listen"), listen);
        }

        return new HealthConfig
        {
            ListenHost = host,
            ListenPort = port,
            ProbeInterval = health.Duration("probeInterval", TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(10)),
        };
    }

    private static (string Host, int Port) ParseLoopbackEndpoint(string field, string listen)
    {
        var colon = listen.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(listen.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 0 or > 65535)
        {
            throw new ConfigException(field, $"must be host:port on loopback, e.g. 127.0.0.1:8787, got \"{listen}\"");
        }

        var host = listen[..colon].Trim('[', ']');
        var loopback = host == "localhost" || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));
        if (!loopback)
        {
            throw new ConfigException(field, $"must be a loopback address (127.0.0.1, [::1] or localhost): health and metrics are not for the network, got \"{host}\"");
        }

        return (host == "localhost" ? "127.0.0.1" : host, port);
    }

    private static LoggingConfig ParseLogging(Node? logging)
    {
        if (logging is null)
        {
            return new LoggingConfig();
        }

        logging.AllowOnly("format", "level");
        return new LoggingConfig
        {
            Format = logging.String("format") is { } format ? OneOf(logging.Field("format"), format, "text", "json") : "text",
            Level = logging.String("level") is { } level
                ? OneOf(logging.Field("level"), level, "debug", "info", "warning", "error") switch
                {
                    "debug" => LogLevel.Debug,
                    "warning" => LogLevel.Warning,
                    "error" => LogLevel.Error,
                    _ => LogLevel.Information,
                }
                : LogLevel.Information,
        };
    }

    private static string OneOf(string field, string value, params string[] allowed) =>
        allowed.Contains(value, StringComparer.Ordinal)
            ? value
            : throw new ConfigException(field, $"must be one of {string.Join(", ", allowed)}, got \"{value}\"");

    private static void RequireDnsLabel(string field, string name)
    {
        var ok = name.Length is > 0 and <= 63
            && (char.IsAsciiLetterLower(name[0]) || char.IsAsciiDigit(name[0]))
            && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-')
            && !name.EndsWith('-');
        if (!ok)
        {
            throw new ConfigException(field, $"must be 1-63 lowercase letters, digits or '-' (it appears in logs and metrics), got \"{name}\"");
        }
    }

    private static string RequireGroupName(string field, string group)
    {
        if (group.Length == 0 || group.Length > 32 || !group.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw new ConfigException(field, $"is not a valid group name: \"{group}\"");
        }

        return group;
    }

    /// <summary>A mapping node with its field path, for errors that say exactly where the problem is.</summary>
    private sealed class Node(YamlMappingNode mapping, string path)
    {
        public string Field(string key) => path.Length == 0 ? key : $"{path}.{key}";

        public void AllowOnly(params string[] keys)
        {
            foreach (var entry in mapping.Children)
            {
                var key = (entry.Key as YamlScalarNode)?.Value ?? "";
                if (!keys.Contains(key, StringComparer.Ordinal))
                {
                    throw new ConfigException(Field(key), $"unknown field (line {entry.Key.Start.Line}); allowed here: {string.Join(", ", keys)}");
                }
            }
        }

        private YamlNode? Get(string key) =>
            mapping.Children.TryGetValue(new YamlScalarNode(key), out var node) && !IsNull(node) ? node : null;

        private static bool IsNull(YamlNode node) =>
            node is YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" };

        public string? String(string key)
        {
            var node = Get(key);
            if (node is null)
            {
                return null;
            }

            if (node is not YamlScalarNode scalar)
            {
                throw new ConfigException(Field(key), $"must be a single value (line {node.Start.Line})");
            }

            return string.IsNullOrEmpty(scalar.Value) ? throw new ConfigException(Field(key), "must not be empty") : scalar.Value;
        }

        public bool Bool(string key, bool fallback) => String(key) switch
        {
            null => fallback,
            "true" => true,
            "false" => false,
            var other => throw new ConfigException(Field(key), $"must be true or false, got \"{other}\""),
        };

        public long Long(string key, long fallback, long min, long max)
        {
            var text = String(key);
            if (text is null)
            {
                return fallback;
            }

            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
            {
                throw new ConfigException(Field(key), $"must be a whole number from {min} to {max}, got \"{text}\"");
            }

            return value;
        }

        public TimeSpan Duration(string key, TimeSpan fallback, TimeSpan min, TimeSpan max)
        {
            var text = String(key);
            if (text is null)
            {
                return fallback;
            }

            if (!GoDuration.TryParse(text, out var value))
            {
                throw new ConfigException(Field(key), $"must be a duration such as 30s, 10m or 168h, got \"{text}\"");
            }

            if (value < min || value > max)
            {
                throw new ConfigException(Field(key), $"must be from {GoDuration.Format(min)} to {GoDuration.Format(max)}, got \"{text}\"");
            }

            return value;
        }

        public Node? Mapping(string key)
        {
            var node = Get(key);
            return node switch
            {
                null => null,
                YamlMappingNode child => new Node(child, Field(key)),
                _ => throw new ConfigException(Field(key), $"must be a mapping of fields (line {node.Start.Line})"),
            };
        }

        public List<Node>? Sequence(string key)
        {
            var node = Get(key);
            if (node is null)
            {
                return null;
            }

            if (node is not YamlSequenceNode sequence)
            {
                throw new ConfigException(Field(key), $"must be a list (line {node.Start.Line})");
            }

            return sequence.Children.Select((child, i) => child is YamlMappingNode m
                ? new Node(m, $"{Field(key)}[{i}]")
                : throw new ConfigException($"{Field(key)}[{i}]", "must be a mapping of fields")).ToList();
        }
    }
}
