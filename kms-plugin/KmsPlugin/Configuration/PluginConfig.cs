namespace KmsPlugin.Configuration;

/// <summary>The validated configuration (docs/configuration.md documents every field).</summary>
public sealed record PluginConfig
{
    /// <summary>Absolute path of the Unix socket (from <c>listen: unix:///path</c>).</summary>
    public required string SocketPath { get; init; }

    /// <summary>When set, the socket is 0660 and owned by this group (so a non-root apiserver in the group can connect); else 0600.</summary>
    public string? SocketGroup { get; init; }

    /// <summary>StatusResponse.version: <c>v2</c>, or <c>v2beta1</c> for 1.27/1.28 apiservers. Constant for the process's life.</summary>
    public string StatusVersion { get; init; } = "v2";

    public required KekConfig Kek { get; init; }

    /// <summary><c>envelope.mode</c>: the local KEK hierarchy (default), or a root-key wrap per seed for comparison benchmarks.</summary>
    public Core.Envelope.EnvelopeMode EnvelopeMode { get; init; } = Core.Envelope.EnvelopeMode.Kek;

    /// <summary>First entry is the primary (wraps new KEKs); the rest are decrypt-only or additional wraps.</summary>
    public required IReadOnlyList<RootKeyConfig> RootKeys { get; init; }

    public required HealthConfig Health { get; init; }

    public required LoggingConfig Logging { get; init; }

    /// <summary><c>circuitBreaker</c>: the breaker in front of every remote root key; null when <c>enabled: false</c>.</summary>
    public Core.RootKeys.CircuitBreakerOptions? CircuitBreaker { get; init; } = Core.RootKeys.CircuitBreakerOptions.Default;

    /// <summary>Upper bound on one root-key call (wrap, unwrap, probe).</summary>
    public TimeSpan RootKeyTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long SIGTERM waits for in-flight calls before closing.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>True for <c>serve --dev</c>: a local root key; logged loudly as not for production.</summary>
    public bool Development { get; init; }

    /// <summary><c>stateDirectory</c>: where the key_id history (<c>key-ids.json</c>) is kept; null keeps it in memory.</summary>
    public string? StateDirectory { get; init; }

    /// <summary><c>rotation.stableProbes</c>: probes a new remote key version must be seen for before it is adopted.</summary>
    public int StableProbes { get; init; } = 3;

    public ReloadConfig Reload { get; init; } = new();

    /// <summary>The file this configuration was read from (null for --dev): watched for changes when <see cref="ReloadConfig.Watch"/>.</summary>
    public string? SourcePath { get; init; }

    /// <summary>The --listen override the file was read with, applied again on every reload.</summary>
    public string? ListenOverride { get; init; }

    /// <summary><c>kmsV1beta1</c>: also serve the deprecated KMS v1 service on the socket (off by default).</summary>
    public V1Beta1Config KmsV1beta1 { get; init; } = new();
}

/// <summary><c>reload</c>: the configuration file is watched and valid changes to <c>rootKeys</c> and <c>rotation</c> apply without a restart.</summary>
public sealed record ReloadConfig
{
    public bool Watch { get; init; } = true;

    /// <summary>The file is also re-read this often, for filesystems and ConfigMap mounts where change events are unreliable.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(10);
}

public sealed record KekConfig
{
    public long MaxUses { get; init; } = 1L << 21;

    public TimeSpan MaxAge { get; init; } = TimeSpan.FromDays(7);

    public int CacheSize { get; init; } = 1000;
}

public sealed record RootKeyConfig
{
    public required string Name { get; init; }

    public required string Provider { get; init; }

    /// <summary><c>role</c>: primary (the first entry), decrypt-only (default for the others) or additional-wrap.</summary>
    public Core.RootKeys.RootKeyRole Role { get; init; } = Core.RootKeys.RootKeyRole.DecryptOnly;

    /// <summary>The entry's configuration as canonical text: a reload reuses the open key when it is unchanged.</summary>
    public string Fingerprint { get; init; } = "";

    /// <summary>The provider's own settings record (e.g. <see cref="Providers.LocalRootKeyConfig"/>), parsed by its
    /// <see cref="RootKeyProvider"/>.</summary>
    public required object Settings { get; init; }

    public T SettingsAs<T>()
        where T : class =>
        Settings as T ?? throw new InvalidOperationException($"root key '{Name}' has {Settings.GetType().Name} settings, not {typeof(T).Name}");
}

public sealed record HealthConfig
{
    /// <summary>Loopback host:port for /livez, /readyz, /healthz; null disables the HTTP port.</summary>
    public string? ListenHost { get; init; }

    public int ListenPort { get; init; }

    /// <summary>How often the primary root key is probed while healthy (every min(interval, 10s) while unhealthy).</summary>
    public TimeSpan ProbeInterval { get; init; } = TimeSpan.FromSeconds(30);
}

public sealed record LoggingConfig
{
    /// <summary><c>text</c> or <c>json</c>.</summary>
    public string Format { get; init; } = "text";

    public Microsoft.Extensions.Logging.LogLevel Level { get; init; } = Microsoft.Extensions.Logging.LogLevel.Information;
}
