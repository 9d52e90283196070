using Amazon.Runtime;
using RetryPolicy = KmsPlugin.Core.RootKeys.RetryPolicy;

namespace KmsPlugin.Aws.Tests;

/// <summary>Options for a root key on the fake: static test credentials, the fake's endpoint, tiny retry waits.</summary>
internal static class AwsTestOptions
{
    public static readonly RetryPolicy FastRetry = new() { MaxAttempts = 3, BaseDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(5) };

    public static AwsKmsRootKeyOptions For(FakeAwsKms fake, string keyId) => new()
    {
        Name = "aws-test",
        KeyId = keyId,
        Region = FakeAwsKms.Region,
        Endpoint = fake.Endpoint,
        ExplicitCredentials = new BasicAWSCredentials(FakeAwsKms.StaticAccessKeyId, FakeAwsKms.StaticSecretKey),
        RequestTimeout = TimeSpan.FromSeconds(2),
        OpenTimeout = TimeSpan.FromSeconds(5),
        Retry = FastRetry,
    };

    public static byte[] Aad(string text = "k8s-kms-plugin/wrapped-kek/v1\naws-0123") => System.Text.Encoding.UTF8.GetBytes(text);
}
