using KmsPlugin.Configuration;

namespace KmsPlugin.Tests.Unit;

/// <summary>The top-level <c>kmsV1beta1</c> block: off unless explicitly enabled, and strict like every other block.</summary>
public sealed class V1Beta1ConfigTests
{
    private const string Base = "listen: unix:///run/k.sock\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]\n";

    [Theory]
    [InlineData("")]
    [InlineData("kmsV1beta1:\n")]
    [InlineData("kmsV1beta1: {}\n")]
    [InlineData("kmsV1beta1: { enabled: false }\n")]
    public void KMS_v1beta1_is_disabled_unless_enabled(string block) =>
        Assert.False(ConfigLoader.Parse(Base + block, "/").KmsV1beta1.Enabled);

    [Fact]
    public void KMS_v1beta1_can_be_enabled() =>
        Assert.True(ConfigLoader.Parse(Base + "kmsV1beta1:\n  enabled: true\n", "/").KmsV1beta1.Enabled);

    [Theory]
    [InlineData("kmsV1beta1: { enabled: yes }\n", "kmsV1beta1.enabled", "must be true or false")]
    [InlineData("kmsV1beta1: { enable: true }\n", "kmsV1beta1.enable", "unknown field")]
    [InlineData("kmsV1beta1: true\n", "kmsV1beta1", "must be a mapping")]
    [InlineData("kmsv1beta1: { enabled: true }\n", "kmsv1beta1", "unknown field")]
    public void A_bad_kmsV1beta1_block_names_the_field(string block, string field, string problem)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Base + block, "/"));
        Assert.Equal(field, error.Field);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }
}
