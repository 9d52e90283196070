using System.Security.Cryptography;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Aws.Tests;

/// <summary>Tests that set process-wide AWS_* environment variables run alone, after the parallel ones.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessEnvironmentCollection
{
    public const string Name = "process environment";
}

/// <summary>
/// <c>credentials.source: default</c> — the SDK's own chain, configured the way EKS configures a pod: EKS Pod Identity
/// (AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, injected by the Pod Identity webhook)
/// and IRSA (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, injected by the pod identity webhook), each against the fake.
/// </summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class AwsDefaultChainTests : IAsyncLifetime, IDisposable
{
    private static readonly string[] Variables =
    [
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME", "AWS_ENDPOINT_URL_STS", "AWS_REGION", "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ];

    private readonly Dictionary<string, string?> _saved = Variables.ToDictionary(v => v, Environment.GetEnvironmentVariable);
    private readonly TempDirectory _dir = new();
    private FakeAwsKms _kms = null!;

    public async Task InitializeAsync()
    {
        _kms = await FakeAwsKms.StartAsync();

        // Sources earlier in the chain than the one under test must not be found on the machine running the tests.
        foreach (var name in new[] { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" })
        {
            Environment.SetEnvironmentVariable(name, null);
        }

        // The SDK caches what the chain resolved for the life of the process and re-resolves only when the static-key
        // variables or AWS_PROFILE change (DefaultAWSCredentialsIdentityResolver.EnvironmentState). A fresh
        // AWS_SESSION_TOKEN without an access key changes that state while adding no credentials, so each test resolves
        // the chain anew against its own fake.
        Environment.SetEnvironmentVariable("AWS_SESSION_TOKEN", "chain-reset-" + Guid.NewGuid());
    }

    public async Task DisposeAsync()
    {
        foreach (var (name, value) in _saved)
        {
            Environment.SetEnvironmentVariable(name, value);
        }

        await _kms.DisposeAsync();
    }

    public void Dispose() => _dir.Dispose();

    private AwsKmsRootKeyOptions DefaultChain(FakeKmsKey key) => AwsTestOptions.For(_kms, key.Arn) with
    {
        ExplicitCredentials = null,
        Credentials = new AwsCredentialOptions { Source = AwsCredentialSource.Default },
    };

    [Fact]
    public async Task The_default_chain_uses_EKS_Pod_Identity()
    {
        var key = _kms.CreateKey();
        var tokenFile = _dir.FilePath("eks-pod-identity-token");
        await File.WriteAllTextAsync(tokenFile, "pod-identity-agent-token");
        _kms.PodIdentityToken = "pod-identity-agent-token";
        Environment.SetEnvironmentVariable("AWS_CONTAINER_CREDENTIALS_FULL_URI", new Uri(_kms.Endpoint, "pod-identity").ToString());
        Environment.SetEnvironmentVariable("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokenFile);

        using var root = await AwsKmsRootKey.OpenAsync(DefaultChain(key), CancellationToken.None);
        var kek = RandomNumberGenerator.GetBytes(32);
        using var unwrapped = await root.UnwrapAsync(await root.WrapAsync(kek, AwsTestOptions.Aad(), CancellationToken.None), AwsTestOptions.Aad(), CancellationToken.None);

        Assert.Equal(kek, unwrapped.Span.ToArray());
        Assert.True(_kms.Calls("PodIdentity") >= 1);
    }

    [Fact]
    public async Task The_default_chain_uses_IRSA_web_identity_from_the_environment()
    {
        var key = _kms.CreateKey();
        var tokenFile = _dir.FilePath("irsa-token");
        await File.WriteAllTextAsync(tokenFile, "irsa-projected-jwt");
        _kms.AcceptedWebIdentityTokens["irsa-projected-jwt"] = true;
        Environment.SetEnvironmentVariable("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile);
        Environment.SetEnvironmentVariable("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/kms-plugin");
        Environment.SetEnvironmentVariable("AWS_ROLE_SESSION_NAME", "irsa-test");
        Environment.SetEnvironmentVariable("AWS_REGION", FakeAwsKms.Region);

        // The SDK's own STS client honours the service-specific endpoint variable (SDK "configured endpoints").
        Environment.SetEnvironmentVariable("AWS_ENDPOINT_URL_STS", _kms.Endpoint.ToString());

        using var root = await AwsKmsRootKey.OpenAsync(DefaultChain(key), CancellationToken.None);
        var wrapped = await root.WrapAsync(RandomNumberGenerator.GetBytes(32), AwsTestOptions.Aad(), CancellationToken.None);

        Assert.NotEmpty(wrapped);
        Assert.Contains("irsa-projected-jwt", _kms.WebIdentityTokensSeen);
    }
}
