using System.Text.Json.Nodes;
using KmsPlugin.Configuration;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.Gcp.Tests.Fakes;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Gcp.Tests;

/// <summary>
/// One fake Cloud KMS + token endpoints on loopback TLS, a private directory with the test CA as the plugin's
/// <c>caFile</c>, and an <c>external_account</c> (Workload Identity Federation) credential file whose subject token
/// is a file — the credential most tests use. Retry delays are tiny; the retry counts are the production defaults.
/// </summary>
internal sealed class GcpTestBed : IAsyncDisposable
{
    private GcpTestBed(FakeCloudKms kms, TempDirectory directory)
    {
        Kms = kms;
        Directory = directory;
        CaFile = LoopbackTls.Shared.WriteCaFile(directory);
        SubjectTokenFile = directory.FilePath("gcp-ksa-token");
        File.WriteAllText(SubjectTokenFile, kms.SubjectToken);
        ExternalAccountFile = directory.FilePath("external-account.json");
        File.WriteAllText(ExternalAccountFile, new JsonObject
        {
            ["type"] = "external_account",
            ["audience"] = FakeCloudKms.Audience,
            ["subject_token_type"] = "urn:ietf:params:oauth:token-type:jwt",
            ["token_url"] = new Uri(kms.BaseUri, "sts/v1/token").ToString(),
            ["credential_source"] = new JsonObject { ["file"] = SubjectTokenFile },
        }.ToJsonString());
    }

    public FakeCloudKms Kms { get; }

    public TempDirectory Directory { get; }

    public string CaFile { get; }

    public string SubjectTokenFile { get; }

    public string ExternalAccountFile { get; }

    public static readonly RetryPolicy FastRetry = new() { MaxAttempts = 3, BaseDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(50) };

    public static async Task<GcpTestBed> StartAsync() => new(await FakeCloudKms.StartAsync(), new TempDirectory());

    public GcpKmsRootKeyOptions Options(string? version = null, string name = "gcpkms") => new()
    {
        Name = name,
        CryptoKey = FakeCloudKms.CryptoKey,
        CryptoKeyVersion = version,
        Endpoint = Kms.BaseUri,
        CredentialsFile = ExternalAccountFile,
        CaFile = CaFile,
        NetworkTimeout = TimeSpan.FromSeconds(2),
        Retry = FastRetry,
    };

    public Task<GcpKmsRootKey> OpenAsync(GcpKmsRootKeyOptions? options = null) => GcpKmsRootKey.OpenAsync(options ?? Options(), CancellationToken.None);

    public string RootKeyYaml(string name = "gcpkms", string? version = null) => $"""
          - name: {name}
            provider: gcp
            gcp:
              cryptoKey: {FakeCloudKms.CryptoKey}
        {(version is null ? "" : $"      cryptoKeyVersion: \"{version}\"\n")}      endpoint: {Kms.Endpoint}
              credentialsFile: {ExternalAccountFile}
              caFile: {CaFile}
              networkTimeout: 2s
              retryBaseDelay: 1ms
              retryMaxDelay: 50ms
        """;

    /// <summary>A whole plugin config with the given root-key entries, parsed as the plugin parses its file (a fresh socket each call).</summary>
    public PluginConfig PluginConfig(params string[] rootKeys) => PluginYaml.Parse(Directory, rootKeys);

    public async ValueTask DisposeAsync()
    {
        await Kms.DisposeAsync();
        Directory.Dispose();
    }
}
