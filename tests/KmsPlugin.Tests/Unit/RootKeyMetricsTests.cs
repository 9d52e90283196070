using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Core.Security;
using KmsPlugin.Observability;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.Unit;

/// <summary>
/// <see cref="MeteringPolicy"/>: every remote call counted by provider, operation and outcome class, and every member
/// of the provider's key forwarded (including default-implemented and versioned ones).
/// </summary>
public sealed class RootKeyMetricsTests : IDisposable
{
    private static readonly byte[] Aad = "test/aad"u8.ToArray();
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly PluginMetrics _metrics;
    private readonly Recorder _recorded;

    public RootKeyMetricsTests()
    {
        var factory = _services.GetRequiredService<IMeterFactory>();
        _metrics = new PluginMetrics(factory);
        _recorded = new Recorder(factory);
    }

    [Fact]
    public async Task Wraps_unwraps_throttling_and_cancellation_are_counted_by_provider_operation_and_outcome()
    {
        var fake = new FakeRootKey("remote");
        using var key = MeteringPolicy.Decorate(fake, _metrics);
        var wrapped = await key.WrapAsync(new byte[32], Aad, CancellationToken.None);
        (await key.UnwrapAsync(wrapped, Aad, CancellationToken.None)).Dispose();

        fake.Failure = new KmsPluginException(KmsErrorKind.Throttled, "rate exceeded");
        await Assert.ThrowsAsync<KmsPluginException>(() => key.UnwrapAsync(wrapped, Aad, CancellationToken.None));
        fake.Failure = new KmsPluginException(KmsErrorKind.RootKeyUnavailable, "connection refused");
        await Assert.ThrowsAsync<KmsPluginException>(() => key.WrapAsync(new byte[32], Aad, CancellationToken.None));

        fake.Failure = null;
        fake.Latency = TimeSpan.FromMinutes(1);
        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(20));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => key.WrapAsync(new byte[32], Aad, deadline.Token));

        Assert.Equal(
            [
                ("fake", "wrap", "ok"),
                ("fake", "unwrap", "ok"),
                ("fake", "unwrap", "throttled"),
                ("fake", "wrap", "root_key_unavailable"),
                ("fake", "wrap", "cancelled"),
            ],
            _recorded.Calls("kms_plugin_root_key_requests"));
        Assert.Equal(5, _recorded.Calls("kms_plugin_root_key_request_duration").Count);
    }

    [Fact]
    public async Task A_providers_own_timeout_and_an_untyped_exception_have_their_own_outcomes()
    {
        using var timingOut = MeteringPolicy.Decorate(new ThrowingRootKey(new TaskCanceledException("client timeout", new TimeoutException())), _metrics);
        await Assert.ThrowsAsync<TaskCanceledException>(() => timingOut.WrapAsync(new byte[32], Aad, CancellationToken.None));
        using var buggy = MeteringPolicy.Decorate(new ThrowingRootKey(new InvalidOperationException("bug")), _metrics);
        await Assert.ThrowsAsync<InvalidOperationException>(() => buggy.UnwrapAsync(new byte[40], Aad, CancellationToken.None));

        Assert.Equal([("throwing", "wrap", "timeout"), ("throwing", "unwrap", "internal")], _recorded.Calls("kms_plugin_root_key_requests"));
    }

    [Fact]
    public void Every_error_kind_has_a_snake_case_outcome()
    {
        Assert.Equal("root_key_unavailable", RootKeyOutcomes.Of(new KmsPluginException(KmsErrorKind.RootKeyUnavailable, "x"), default));
        Assert.Equal("root_key_denied", RootKeyOutcomes.Of(new KmsPluginException(KmsErrorKind.RootKeyDenied, "x"), default));
        Assert.Equal("throttled", RootKeyOutcomes.Of(new KmsPluginException(KmsErrorKind.Throttled, "x"), default));
        Assert.Equal("deadline_exceeded", RootKeyOutcomes.Of(new KmsPluginException(KmsErrorKind.DeadlineExceeded, "x"), default));
        Assert.All(Enum.GetValues<KmsErrorKind>(), kind =>
            Assert.Matches("^[a-z]+(_[a-z]+)*$", RootKeyOutcomes.Of(new KmsPluginException(kind, "x"), default)));
    }

    [Fact]
    public async Task A_versioned_key_stays_versioned_and_every_member_reaches_the_providers_key()
    {
        var inner = new VersionedKey("v1");
        using var decorated = MeteringPolicy.Decorate(inner, _metrics);
        var versioned = Assert.IsAssignableFrom<IVersionedRootKey>(decorated);
        Assert.Equal((inner.Name, inner.Provider, inner.KeyId), (versioned.Name, versioned.Provider, versioned.KeyId));
        Assert.True(versioned.FollowsLatestVersion);
        Assert.Equal("v1", versioned.CurrentVersion);

        // The provider's Recognizes (older versions' key_ids), not the interface's default (own key_id only).
        Assert.True(versioned.Recognizes(KeyIds.Derive("versioned", "key/v0"), [1, 2, 3]));
        Assert.False(versioned.Recognizes("someone-else", [1, 2, 3]));

        Assert.Equal("v2", await versioned.ReadLatestVersionAsync(CancellationToken.None));
        using var next = versioned.WithVersion("v2");
        Assert.IsType<MeteringPolicy>(Assert.IsType<PolicyVersionedRootKey>(next).Policy);
        await next.WrapAsync(new byte[32], Aad, CancellationToken.None);
        Assert.Equal([("versioned", "read_version", "ok"), ("versioned", "wrap", "ok")], _recorded.Calls("kms_plugin_root_key_requests"));

        decorated.Dispose();
        Assert.True(inner.Disposed);
    }

    [Fact]
    public void Without_metrics_the_providers_key_is_returned_unchanged()
    {
        using var fake = new FakeRootKey();
        Assert.Same(fake, MeteringPolicy.Decorate(fake, null));
    }

    [Fact]
    public void Config_reloads_are_counted_by_outcome_and_unknown_outcomes_are_refused()
    {
        _metrics.RecordConfigReload(PluginMetrics.ReloadApplied);
        _metrics.RecordConfigReload("rejected");
        Assert.Throws<ArgumentOutOfRangeException>(() => _metrics.RecordConfigReload("exploded"));
        Assert.Equal(["applied", "rejected"], _recorded.Outcomes("kms_plugin_config_reloads"));
    }

    public void Dispose()
    {
        _recorded.Dispose();
        _services.Dispose();
    }

    /// <summary>Collects the non-zero measurements of this test's meter only (other tests' plugins run in the same process).</summary>
    private sealed class Recorder : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentQueue<(string Instrument, IReadOnlyDictionary<string, object?> Tags)> _measurements = new();

        public Recorder(IMeterFactory factory)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, factory))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Add(instrument, value, tags));
            _listener.SetMeasurementEventCallback<double>((instrument, _, tags, _) => Add(instrument, 1, tags));
            _listener.Start();
        }

        public List<(string, string, string)> Calls(string instrument) =>
            [.. _measurements.Where(m => m.Instrument == instrument)
                .Select(m => ((string)m.Tags["provider"]!, (string)m.Tags["operation"]!, (string)m.Tags["outcome"]!))];

        public List<string> Outcomes(string instrument) => [.. _measurements.Where(m => m.Instrument == instrument).Select(m => (string)m.Tags["outcome"]!)];

        public void Dispose() => _listener.Dispose();

        private void Add(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (value != 0) // PluginMetrics reports each reload outcome as 0 at start
            {
                _measurements.Enqueue((instrument.Name, tags.ToArray().ToDictionary(t => t.Key, t => t.Value)));
            }
        }
    }

    private sealed class ThrowingRootKey(Exception failure) : IRootKey
    {
        public string Name => "throwing";

        public string Provider => "throwing";

        public string KeyId => "throwing-key";

        public Task<byte[]> WrapAsync(ReadOnlyMemory<byte> kek, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken) =>
            Task.FromException<byte[]>(failure);

        public Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken) =>
            Task.FromException<SecretBuffer>(failure);

        public void Dispose()
        {
        }
    }

    /// <summary>A key with versions whose Recognizes accepts its older versions' key_ids, as a versioned provider's does.</summary>
    private sealed class VersionedKey(string version) : IVersionedRootKey
    {
        private readonly FakeRootKey _key = new("versioned", KeyIds.Derive("versioned", "key/" + version));

        public bool Disposed { get; private set; }

        public string Name => _key.Name;

        public string Provider => "versioned";

        public string KeyId => _key.KeyId;

        public bool FollowsLatestVersion => true;

        public string CurrentVersion => version;

        public Task<byte[]> WrapAsync(ReadOnlyMemory<byte> kek, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken) =>
            _key.WrapAsync(kek, associatedData, cancellationToken);

        public Task<SecretBuffer> UnwrapAsync(ReadOnlyMemory<byte> wrapped, ReadOnlyMemory<byte> associatedData, CancellationToken cancellationToken) =>
            _key.UnwrapAsync(wrapped, associatedData, cancellationToken);

        public bool Recognizes(string keyId, ReadOnlySpan<byte> wrapped) =>
            keyId == KeyId || keyId == KeyIds.Derive("versioned", "key/v0");

        public Task<string> ReadLatestVersionAsync(CancellationToken cancellationToken) => Task.FromResult("v2");

        public IVersionedRootKey WithVersion(string newVersion) => new VersionedKey(newVersion);

        public void Dispose()
        {
            Disposed = true;
            _key.Dispose();
        }
    }
}
