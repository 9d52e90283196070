using System.Security.Cryptography;
using Grpc.Core;
using KmsPlugin.Client;
using KmsPlugin.Configuration;
using KmsPlugin.Core.Envelope;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Aws.Tests;

/// <summary>
/// The plugin with an aws root key, configured from YAML (web identity against the fake's STS, the fake as KMS
/// endpoint), through its real Unix socket the way kube-apiserver talks to it.
/// </summary>
public sealed class AwsEndToEndTests : IAsyncLifetime
{
    private AwsPluginBed _bed = null!;

    private FakeAwsKms Kms => _bed.Kms;

    public async Task InitializeAsync() => _bed = await AwsPluginBed.StartAsync();

    public async Task DisposeAsync() => await _bed.DisposeAsync();

    /// <summary>The configuration every test here uses: the one entry, with an encryption context of its own.</summary>
    private PluginConfig Config(string? keyId = null, int? healthPort = null) =>
        _bed.PluginConfig(_bed.RootKeyYaml(keyId, ("cluster", "e2e")), healthPort);

    private async Task<PluginHost> StartAsync(string? keyId = null)
    {
        var plugin = await PluginHost.StartAsync(Config(keyId));
        await plugin.WaitForProbeAsync();
        return plugin;
    }

    [Fact]
    public async Task Status_encrypt_decrypt_over_the_socket_pass_the_apiservers_checks()
    {
        await using var plugin = await StartAsync();

        var status = await plugin.Apiserver.StatusAsync();
        var report = await plugin.Apiserver.ProbeAsync();

        Assert.True(report.Ok, string.Join('\n', report.Lines));
        Assert.Equal("ok", status.Healthz);
        Assert.StartsWith("aws-", status.KeyId, StringComparison.Ordinal);
        Assert.Null(ApiserverEmulator.CheckStatus(status));
        Assert.Contains(AwsPluginBed.Jwt, Kms.WebIdentityTokensSeen);
        Assert.All(Kms.Requests, r => Assert.Equal("e2e", r.Context["cluster"]));
        Assert.All(Kms.Requests, r => Assert.True(r.Context.ContainsKey(AwsEncryptionContext.AssociatedDataKey)));
    }

    [Fact]
    public async Task An_alias_and_the_ARN_it_names_report_the_same_key_id()
    {
        string byAlias;
        await using (var plugin = await StartAsync(AwsPluginBed.Alias))
        {
            byAlias = (await plugin.Apiserver.StatusAsync()).KeyId;
        }

        await using var byArn = await StartAsync();
        Assert.Equal(byAlias, (await byArn.Apiserver.StatusAsync()).KeyId);
    }

    [Fact]
    public async Task After_AWS_rotates_the_key_the_key_id_is_unchanged_and_old_data_decrypts()
    {
        var seed = RandomNumberGenerator.GetBytes(32);
        Protocol.V2.EncryptResponse stored;
        await using (var before = await StartAsync())
        {
            stored = await before.Apiserver.EncryptAsync(seed);
        }

        _bed.Key.Rotate();
        await using var after = await StartAsync();

        Assert.Equal(stored.KeyId, (await after.Apiserver.StatusAsync()).KeyId);
        Assert.Equal(seed, await after.Apiserver.DecryptAsync(stored));
    }

    public static TheoryData<FaultKind, StatusCode, int, string> SocketFaults => new()
    {
        { FaultKind.InternalError, StatusCode.Unavailable, 3, "KMSInternalException" },
        { FaultKind.ServiceUnavailable, StatusCode.Unavailable, 3, "503" },
        { FaultKind.Throttling, StatusCode.ResourceExhausted, 3, "ThrottlingException" },
        { FaultKind.AccessDenied, StatusCode.FailedPrecondition, 1, "AccessDeniedException" },
        { FaultKind.Disabled, StatusCode.FailedPrecondition, 1, "DisabledException" },
        { FaultKind.TamperCiphertext, StatusCode.DataLoss, 1, "InvalidCiphertextException" },
    };

    [Theory]
    [MemberData(nameof(SocketFaults))]
    public async Task A_KMS_fault_gives_its_gRPC_code_and_healthz_reason_while_cached_KEK_traffic_keeps_working(FaultKind fault, StatusCode code,
        int attempts, string reason) =>
        await RemoteFaultScenario.RunAsync(() => Config(), new RemoteUnwrapFault
        {
            RootKeyName = "aws-prod",
            Inject = () => Kms.Fault = new FakeFault(fault, "Decrypt"),
            Clear = () => Kms.Fault = null,
            UnwrapRequests = () => Kms.Calls("Decrypt"),
        }, code, attempts, reason);

    [Fact]
    public async Task Throttling_is_visible_in_metrics_by_provider_and_outcome()
    {
        await RemoteThrottlingScenario.RunAsync(port => Config(healthPort: port), new RemoteThrottling
        {
            Provider = "aws",
            Throttle = () => Kms.Fault = new FakeFault(FaultKind.Throttling, "Decrypt"), // ThrottlingException
            Clear = () => Kms.Fault = null,
            UnwrapRequests = () => Kms.Calls("Decrypt"),
        });
    }

    [Fact]
    public Task A_KMS_slower_than_the_deadline_gives_DeadlineExceeded_and_the_plugin_keeps_serving() =>
        RemoteDeadlineScenario.RunAsync(() => StartAsync(),
            () => Kms.Fault = new FakeFault(FaultKind.None, "Decrypt", latency: TimeSpan.FromSeconds(30)),
            () => Kms.Fault = null);

    [Fact]
    public async Task No_AWS_secret_key_session_token_or_JWT_reaches_the_logs_Status_or_gRPC_errors()
    {
        var seed = RandomNumberGenerator.GetBytes(32);
        Protocol.V2.EncryptResponse stored;
        await using (var writer = await StartAsync())
        {
            stored = await writer.Apiserver.EncryptAsync(seed);
        }

        using var logs = new CapturingLoggerProvider();
        var config = Config() with { Logging = new LoggingConfig { Level = LogLevel.Debug } };
        await using var plugin = await PluginHost.StartAsync(config, new Hosting.ServerDependencies { ExtraLogger = logs });
        await plugin.WaitForProbeAsync();
        var texts = new List<string>();
        Kms.Fault = new FakeFault(FaultKind.AccessDenied, "Decrypt");
        texts.Add((await Assert.ThrowsAsync<RpcException>(() => plugin.Apiserver.DecryptAsync(stored))).Status.Detail);
        await plugin.App.Services.GetRequiredService<RootKeyHealthMonitor>().ProbeOnceAsync(CancellationToken.None);
        texts.Add((await plugin.Apiserver.StatusAsync()).Healthz);
        await plugin.DisposeAsync();
        texts.AddRange(logs.Lines);

        var secrets = Kms.IssuedSecrets.Append(AwsPluginBed.Jwt).ToList();
        Assert.True(secrets.Count >= 3);
        Assert.NotEmpty(logs.Lines);
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(texts, text => text.Contains(secret, StringComparison.Ordinal));
        }
    }
}
