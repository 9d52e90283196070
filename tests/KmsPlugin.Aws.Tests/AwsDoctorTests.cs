using KmsPlugin.Cli;
using KmsPlugin.Configuration;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Aws.Tests;

/// <summary><c>kms-plugin doctor --config FILE</c> with an aws root key, against the KMS and STS fake.</summary>
public sealed class AwsDoctorTests : IAsyncLifetime, IDisposable
{
    private const string Jwt = "eyJhbGciOiJSUzI1NiJ9.doctor.sig";
    private readonly TempDirectory _dir = new();
    private FakeAwsKms _kms = null!;
    private FakeKmsKey _key = null!;

    public async Task InitializeAsync()
    {
        _kms = await FakeAwsKms.StartAsync();
        _key = _kms.CreateKey("alias/k8s-secrets");
        _kms.AcceptedWebIdentityTokens[Jwt] = true;
        await File.WriteAllTextAsync(_dir.FilePath("aws-token"), Jwt);
    }

    public async Task DisposeAsync() => await _kms.DisposeAsync();

    public void Dispose() => _dir.Dispose();

    private async Task<(int Exit, string Output)> DoctorAsync()
    {
        var path = _dir.FilePath("config.yaml");
        await File.WriteAllTextAsync(path, $"""
            listen: unix://{_dir.FilePath("kms.sock")}
            rootKeyTimeout: 3s
            rootKeys:
              - name: aws-prod
                provider: aws
                aws:
                  keyId: alias/k8s-secrets
                  region: {FakeAwsKms.Region}
                  endpoint: {_kms.Endpoint}
                  networkTimeout: 1s
                  retryBaseDelay: 1ms
                  retryMaxDelay: 5ms
                  credentials:
                    source: webIdentity
                    roleArn: arn:aws:iam::{FakeAwsKms.Account}:role/kms-plugin
                    tokenFile: aws-token
                    stsEndpoint: {_kms.Endpoint}
            """);
        using var output = new StringWriter();
        var exit = await DoctorCommand.RunAsync(ConfigLoader.LoadFile(path, null), path, output);
        return (exit, output.ToString());
    }

    [Fact]
    public async Task Doctor_reaches_KMS_wraps_and_unwraps_and_prints_the_key_id_of_the_resolved_key_ARN()
    {
        var (exit, output) = await DoctorAsync();

        Assert.True(exit == Commands.Ok, output);
        var keyId = KeyIds.Derive("aws", AwsKmsRootKey.Identity(_key.Arn, new Dictionary<string, string>()));
        Assert.Contains("root key aws-prod (aws, primary): opened in", output, StringComparison.Ordinal);
        Assert.Contains("wrap OK", output, StringComparison.Ordinal);
        Assert.Contains("unwrap OK", output, StringComparison.Ordinal);
        Assert.Contains($"key_id:  the plugin will report {keyId}", output, StringComparison.Ordinal);
        Assert.EndsWith("doctor: OK", output.TrimEnd(), StringComparison.Ordinal);

        // KMS rotation keeps the ARN (and the key_id): there is no version to follow or report.
        Assert.DoesNotContain("followed", output, StringComparison.Ordinal);
        Assert.DoesNotContain("pinned", output, StringComparison.Ordinal);
        Assert.Equal(1, _kms.Calls("DescribeKey"));
        Assert.Equal(1, _kms.Calls("Encrypt"));
        Assert.Equal(1, _kms.Calls("Decrypt"));
    }

    [Fact]
    public async Task Doctor_shows_a_role_without_kms_Decrypt_as_a_failing_unwrap_and_exits_1()
    {
        _kms.Fault = new FakeFault(FaultKind.AccessDenied, "Decrypt");

        var (exit, output) = await DoctorAsync();

        Assert.Equal(Commands.Failed, exit);
        Assert.Contains("root key aws-prod (aws, primary): opened in", output, StringComparison.Ordinal);
        Assert.Equal(1, _kms.Calls("Encrypt")); // the wrap passed; the failing step is named
        Assert.Contains("root key aws-prod (aws, primary): PROBLEM (RootKeyDenied) unwrapping the canary:", output, StringComparison.Ordinal);
        Assert.Contains("Decrypt failed: AccessDeniedException", output, StringComparison.Ordinal);
        Assert.Contains("is not authorized to perform: kms:Decrypt", output, StringComparison.Ordinal);
        Assert.DoesNotContain("key_id:  the plugin will report", output, StringComparison.Ordinal);
        Assert.Contains("doctor: PROBLEMS FOUND", output, StringComparison.Ordinal);
    }
}
