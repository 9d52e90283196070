using System.Globalization;
using System.Net;
using System.Text;
using KmsPlugin.Core.Envelope;
using KmsPlugin.Core.RootKeys;
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

        return Parse(text, Path.GetDirectoryName(Path.GetFullPath(path)) ?? "/", listenOverride) with
        {
            SourcePath = Path.GetFullPath(path),
            ListenOverride = listenOverride,
        };
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
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or OverflowException)
        {
            // YamlDotNet throws these (not YamlException) on some malformed input; found by DecoderFuzzTests.
            throw new ConfigException("(root)", "not valid YAML: " + e.Message);
        }

        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            throw new ConfigException("(root)", "the configuration must be one YAML mapping");
        }

        var top = new ConfigNode(root, "");
        top.AllowOnly("listen", "socketGroup", "statusVersion", "kek", "envelope", "rootKeys", "health", "logging", "rootKeyTimeout", "shutdownTimeout",
            "stateDirectory", "rotation", "reload", "kmsV1beta1", "circuitBreaker");

        var listen = listenOverride ?? top.Text("listen") ?? throw new ConfigException("listen", "is required (e.g. unix:///var/run/kmsplugin/kms.sock)");
        var config = new PluginConfig
        {
            SocketPath = ParseListen(listenOverride is null ? "listen" : "--listen", listen),
            SocketGroup = top.Text("socketGroup") is { } group ? RequireGroupName("socketGroup", group) : null,
            StatusVersion = top.Text("statusVersion") is { } version ? OneOf("statusVersion", version, "v2", "v2beta1") : "v2",
            Kek = ParseKek(top.Mapping("kek")),
            EnvelopeMode = ParseEnvelopeMode(top.Mapping("envelope")),
            RootKeys = ParseRootKeys(top, baseDirectory),
            Health = ParseHealth(top.Mapping("health")),
            Logging = ParseLogging(top.Mapping("logging")),
            CircuitBreaker = CircuitBreakerConfig.Parse(top.Mapping("circuitBreaker")),
            RootKeyTimeout = top.Duration("rootKeyTimeout", TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(1)),
            ShutdownTimeout = top.Duration("shutdownTimeout", TimeSpan.FromSeconds(15), TimeSpan.Zero, TimeSpan.FromMinutes(5)),
            StateDirectory = top.Text("stateDirectory") is { } state ? AbsoluteDirectory("stateDirectory", state, baseDirectory) : null,
            StableProbes = ParseStableProbes(top.Mapping("rotation")),
            Reload = ParseReload(top.Mapping("reload")),
            KmsV1beta1 = V1Beta1Config.Parse(top.Mapping("kmsV1beta1")),
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

    private static KekConfig ParseKek(ConfigNode? kek)
    {
        if (kek is null)
        {
            return new KekConfig();
        }

        kek.AllowOnly("maxUses", "maxAge", "cacheSize");
        return new KekConfig
        {
            MaxUses = kek.WholeNumber("maxUses", 1L << 21, 1, EnvelopeOptions.HardMaxUses),
            // KEP-3299 asks plugins to rotate the KEK at least every 90 days.
            MaxAge = kek.Duration("maxAge", TimeSpan.FromDays(7), TimeSpan.FromMinutes(1), TimeSpan.FromDays(90)),
            CacheSize = (int)kek.WholeNumber("cacheSize", 1000, 1, 1_000_000),
        };
    }

    private static EnvelopeMode ParseEnvelopeMode(ConfigNode? envelope)
    {
        if (envelope is null)
        {
            return EnvelopeMode.Kek;
        }

        envelope.AllowOnly("mode");
        return envelope.Text("mode") is { } mode && OneOf(envelope.Field("mode"), mode, "kek", "direct") == "direct"
            ? EnvelopeMode.Direct
            : EnvelopeMode.Kek;
    }

    private static List<RootKeyConfig> ParseRootKeys(ConfigNode top, string baseDirectory)
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
            var name = entry.Text("name") ?? throw new ConfigException(entry.Field("name"), "is required");
            RequireDnsLabel(entry.Field("name"), name);
            if (!names.Add(name))
            {
                throw new ConfigException(entry.Field("name"), $"\"{name}\" is used by more than one root key");
            }

            var provider = entry.Text("provider") ?? throw new ConfigException(entry.Field("provider"), $"is required (one of {string.Join(", ", RootKeyProviders.Names)})");
            var registration = RootKeyProviders.Find(provider)
                ?? throw new ConfigException(entry.Field("provider"), $"must be one of {string.Join(", ", RootKeyProviders.Names)}, got \"{provider}\"");
            entry.AllowOnly("name", "provider", "role", provider);
            var settings = entry.Mapping(provider) ?? throw new ConfigException(entry.Field(provider), $"is required for provider {provider}");
            keys.Add(new RootKeyConfig
            {
                Name = name,
                Provider = provider,
                Role = ParseRole(entry, keys.Count == 0),
                Fingerprint = baseDirectory + "\n" + entry.Canonical,
                Settings = registration.ParseSettings(settings, baseDirectory),
            });
        }

        // The annotation carries the primary's wrap and every additional one (WrappedKekAnnotation.MaxWraps in all).
        var additional = keys.Count(k => k.Role == RootKeyRole.AdditionalWrap);
        if (additional > EnvelopeOptions.MaxAdditionalWraps)
        {
            throw new ConfigException("rootKeys", $"{additional} entries are additional-wrap; at most {EnvelopeOptions.MaxAdditionalWraps} fit beside the primary in the annotation");
        }

        return keys;
    }

    /// <summary>The first entry is the primary; the others only decrypt unless marked as an additional wrap (escrow, second region, migration target).</summary>
    private static RootKeyRole ParseRole(ConfigNode entry, bool first)
    {
        var role = entry.Text("role");
        if (first)
        {
            return role is null or "primary"
                ? RootKeyRole.Primary
                : throw new ConfigException(entry.Field("role"), $"the first root key is the primary; got \"{role}\" (move the entry down the list)");
        }

        return role is null
            ? RootKeyRole.DecryptOnly
            : OneOf(entry.Field("role"), role, "decrypt-only", "additional-wrap", "primary") switch
            {
                "additional-wrap" => RootKeyRole.AdditionalWrap,
                "primary" => throw new ConfigException(entry.Field("role"), "only the first root key is the primary; reorder the list to change it"),
                _ => RootKeyRole.DecryptOnly,
            };
    }

    private static int ParseStableProbes(ConfigNode? rotation)
    {
        if (rotation is null)
        {
            return 3;
        }

        rotation.AllowOnly("stableProbes");
        return (int)rotation.WholeNumber("stableProbes", 3, 1, 100);
    }

    private static ReloadConfig ParseReload(ConfigNode? reload)
    {
        if (reload is null)
        {
            return new ReloadConfig();
        }

        reload.AllowOnly("watch", "pollInterval");
        return new ReloadConfig
        {
            Watch = reload.Bool("watch", true),
            PollInterval = reload.Duration("pollInterval", TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(10)),
        };
    }

    private static string AbsoluteDirectory(string field, string path, string baseDirectory)
    {
        if (path.Length == 0 || path.Contains('\0', StringComparison.Ordinal))
        {
            throw new ConfigException(field, "must be a directory path");
        }

        return Path.GetFullPath(path, baseDirectory).TrimEnd('/') is { Length: > 0 } full ? full : "/";
    }

    private static HealthConfig ParseHealth(ConfigNode? health)
    {
        if (health is null)
        {
            return new HealthConfig();
        }

        health.AllowOnly("listen", "probeInterval");
        string? host = null;
        var port = 0;
        if (health.Text("listen") is { } listen)
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

    private static LoggingConfig ParseLogging(ConfigNode? logging)
    {
        if (logging is null)
        {
            return new LoggingConfig();
        }

        logging.AllowOnly("format", "level");
        return new LoggingConfig
        {
            Format = logging.Text("format") is { } format ? OneOf(logging.Field("format"), format, "text", "json") : "text",
            Level = logging.Text("level") is { } level
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

    internal static string OneOf(string field, string value, params string[] allowed) =>
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
}
