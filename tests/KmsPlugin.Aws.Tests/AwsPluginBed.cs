using KmsPlugin.Configuration;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Aws.Tests;

/// <summary>
/// The plugin configured from YAML against the KMS and STS fake, as the end-to-end and doctor tests run it: key
/// <see cref="Alias"/>, web identity (the IRSA mechanism) with the token in <c>aws-token</c> (a path relative to the
/// test's directory) and the fake as STS, tiny retry waits.
/// </summary>
internal sealed class AwsPluginBed : IAsyncDisposable
{
    public const string Alias = "alias/k8s-secrets";
    public const string Jwt = "eyJhbGciOiJSUzI1NiJ9.e2e.sig";

    private AwsPluginBed(FakeAwsKms kms)
    {
        Kms = kms;
        Key = kms.CreateKey(Alias);
        kms.AcceptedWebIdentityTokens[Jwt] = true;
        File.WriteAllText(Directory.FilePath("aws-token"), Jwt);
    }

    public FakeAwsKms Kms { get; }

    public FakeKmsKey Key { get; }

    public TempDirectory Directory { get; } = new();

    public static async Task<AwsPluginBed> StartAsync() => new(await FakeAwsKms.StartAsync());

    /// <summary>A <c>rootKeys</c> item for the fake (<c>"  - name: ..."</c>) naming <paramref name="keyId"/> (the key's ARN by default).</summary>
    /// <param name="encryptionContext">The entry's <c>encryptionContext</c> pairs, if any.</param>
    public string RootKeyYaml(string? keyId = null, params (string Key, string Value)[] encryptionContext) => $"""
          - name: aws-prod
            provider: aws
            aws:
              keyId: {keyId ?? Key.Arn}
              region: {FakeAwsKms.Region}
              endpoint: {Kms.Endpoint}
              networkTimeout: 1s
              retryBaseDelay: 1ms
              retryMaxDelay: 5ms
        {(encryptionContext.Length == 0 ? "" : "      encryptionContext:\n" + string.Concat(encryptionContext.Select(p => $"        - key: {p.Key}\n          value: {p.Value}\n")))}      credentials:
                source: webIdentity
                roleArn: arn:aws:iam::{FakeAwsKms.Account}:role/kms-plugin
                tokenFile: aws-token
                stsEndpoint: {Kms.Endpoint}
        """;

    /// <summary>A whole plugin configuration with the one entry, parsed as the plugin parses its file (a fresh socket each call).</summary>
    public PluginConfig PluginConfig(string rootKeyYaml, int? healthPort = null) => PluginYaml.Parse(Directory, [rootKeyYaml], healthPort, "rootKeyTimeout: 3s");

    public async ValueTask DisposeAsync()
    {
        await Kms.DisposeAsync();
        Directory.Dispose();
    }
}
