using KmsPlugin.Configuration;

namespace KmsPlugin.Aws.Tests;

/// <summary>The <c>aws:</c> block of the configuration file: parsed into the provider's options, errors naming the field.</summary>
public sealed class AwsConfigTests
{
    private const string KeyArn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    private static PluginConfig Parse(string awsBlock) => ConfigLoader.Parse($"""
        listen: unix:///run/kms/kms.sock
        rootKeys:
          - name: aws-prod
            provider: aws
            aws:
        {string.Join('\n', awsBlock.Split('\n').Select(line => "      " + line))}
        """, "/etc/kms");

    private static ConfigException ParseFails(string awsBlock) => Assert.Throws<ConfigException>(() => Parse(awsBlock));

    [Fact]
    public void A_complete_block_becomes_the_providers_options()
    {
        var config = Parse($"""
            keyId: {KeyArn}
            endpoint: https://vpce-0abc-kms.eu-west-1.vpce.amazonaws.com
            encryptionContext:
              - key: cluster
                value: prod-eu1
            credentials:
              source: webIdentity
              roleArn: arn:aws:iam::111122223333:role/kms-plugin
              tokenFile: tokens/aws-token
              stsEndpoint: https://sts.eu-west-1.amazonaws.com
              sessionName: control-plane-1
              duration: 30m
            networkTimeout: 2s
            maxAttempts: 4
            retryBaseDelay: 50ms
            retryMaxDelay: 1s
            """);

        var options = config.RootKeys[0].SettingsAs<AwsKmsRootKeyOptions>();
        Assert.Equal(KeyArn, options.KeyId);
        Assert.Null(options.Region); // taken from the ARN
        Assert.Equal("eu-west-1", options.EffectiveRegion());
        Assert.Equal(new Uri("https://vpce-0abc-kms.eu-west-1.vpce.amazonaws.com"), options.Endpoint);
        Assert.Equal("prod-eu1", options.EncryptionContext["cluster"]);
        Assert.Equal(AwsCredentialSource.WebIdentity, options.Credentials.Source);
        Assert.Equal("/etc/kms/tokens/aws-token", options.Credentials.TokenFile);
        Assert.Equal("control-plane-1", options.Credentials.SessionName);
        Assert.Equal(TimeSpan.FromMinutes(30), options.Credentials.Duration);
        Assert.Equal(TimeSpan.FromSeconds(2), options.RequestTimeout);
        Assert.Equal(4, options.Retry.MaxAttempts);
        Assert.Equal(TimeSpan.FromMilliseconds(50), options.Retry.BaseDelay);
    }

    [Fact]
    public void The_minimal_block_is_a_key_with_the_default_credential_chain()
    {
        var options = Parse("keyId: alias/k8s-secrets\nregion: eu-west-1").RootKeys[0].SettingsAs<AwsKmsRootKeyOptions>();

        Assert.Equal(AwsCredentialSource.Default, options.Credentials.Source);
        Assert.Empty(options.EncryptionContext);
        Assert.Equal(AwsKmsRootKeyOptions.DefaultRequestTimeout, options.RequestTimeout);
    }

    [Fact]
    public void The_encryption_context_may_be_written_as_a_mapping_and_means_the_same_as_the_list()
    {
        var mapping = Parse($"keyId: {KeyArn}\nencryptionContext:\n  cluster: prod-eu1\n  \"aws:team\": platform")
            .RootKeys[0].SettingsAs<AwsKmsRootKeyOptions>();
        var list = Parse($"keyId: {KeyArn}\nencryptionContext:\n  - key: aws:team\n    value: platform\n  - key: cluster\n    value: prod-eu1")
            .RootKeys[0].SettingsAs<AwsKmsRootKeyOptions>();

        Assert.Equal(new Dictionary<string, string> { ["cluster"] = "prod-eu1", ["aws:team"] = "platform" }, mapping.EncryptionContext);
        Assert.Equal(list.EncryptionContext, mapping.EncryptionContext);

        // Same context, same key_id: switching the notation in a live configuration changes nothing.
        Assert.Equal(AwsKmsRootKey.Identity(KeyArn, list.EncryptionContext), AwsKmsRootKey.Identity(KeyArn, mapping.EncryptionContext));
    }

    [Fact]
    public void A_name_given_twice_in_the_encryption_context_mapping_is_refused()
    {
        var error = ParseFails($"keyId: {KeyArn}\nencryptionContext:\n  cluster: a\n  cluster: b");

        Assert.Contains("Duplicate key cluster", error.Message, StringComparison.Ordinal); // with its line, from the YAML parser
    }

    [Theory]
    [InlineData("region: eu-west-1", "rootKeys[0].aws.keyId", "required")]
    [InlineData("keyId: my-key", "rootKeys[0].aws.keyId", "not a key ARN")]
    [InlineData("keyId: alias/aws/ebs", "rootKeys[0].aws.keyId", "AWS managed key")]
    [InlineData($"keyId: {KeyArn}\nregion: us-east-1", "rootKeys[0].aws.region", "regional")]
    [InlineData("keyId: alias/k8s\nregion: Frankfurt", "rootKeys[0].aws.region", "region name")]
    [InlineData($"keyId: {KeyArn}\nendpoint: http://kms.internal:8080", "rootKeys[0].aws.endpoint", "plain http")]
    [InlineData($"keyId: {KeyArn}\nfips: true\nendpoint: https://kms-fips.eu-west-1.amazonaws.com", "rootKeys[0].aws.fips", "endpoint")]
    [InlineData($"keyId: {KeyArn}\nencryptionContext:\n  - key: k8s-kms-plugin/aad\n    value: x", "rootKeys[0].aws.encryptionContext", "reserved")]
    [InlineData($"keyId: {KeyArn}\nencryptionContext:\n  - key: a\n    value: x\n  - key: a\n    value: y", "rootKeys[0].aws.encryptionContext[1].key", "more than once")]
    [InlineData($"keyId: {KeyArn}\ncredentials:\n  source: webIdentity\n  tokenFile: /t", "rootKeys[0].aws.credentials.roleArn", "IAM role ARN")]
    [InlineData($"keyId: {KeyArn}\ncredentials:\n  source: webIdentity\n  roleArn: arn:aws:iam::1:role/r", "rootKeys[0].aws.credentials.tokenFile", "required")]
    [InlineData($"keyId: {KeyArn}\ncredentials:\n  source: instanceProfile", "rootKeys[0].aws.credentials.source", "must be one of")]
    [InlineData($"keyId: {KeyArn}\ncredentials:\n  roleArn: arn:aws:iam::1:role/r", "rootKeys[0].aws.credentials", "only to source: webIdentity")]
    [InlineData($"keyId: {KeyArn}\naccessKeyId: AKIA", "rootKeys[0].aws.accessKeyId", "unknown field")]
    [InlineData($"keyId: {KeyArn}\ncaFile: /ca.pem", "rootKeys[0].aws.caFile", "unknown field")]
    [InlineData($"keyId: {KeyArn}\nencryptionContext:\n  cluster:", "rootKeys[0].aws.encryptionContext.cluster", "must have a value")]
    [InlineData($"keyId: {KeyArn}\nencryptionContext:\n  cluster: [a, b]", "rootKeys[0].aws.encryptionContext.cluster", "single value")]
    [InlineData($"keyId: {KeyArn}\nencryptionContext:\n  k8s-kms-plugin/aad: x", "rootKeys[0].aws.encryptionContext", "reserved")]
    [InlineData($"keyId: {KeyArn}\nencryptionContext: prod", "rootKeys[0].aws.encryptionContext", "must be a mapping of names to values")]
    public void A_bad_block_fails_naming_the_field(string block, string field, string problem)
    {
        var error = ParseFails(block);

        Assert.Equal(field, error.Field);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }
}
