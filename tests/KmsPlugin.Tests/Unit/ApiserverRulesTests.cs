using KmsPlugin.Core.Protocol;

namespace KmsPlugin.Tests.Unit;

/// <summary>Tables from apimachinery validation_test.go and kmsv2 envelope_test.go (TestValidateAnnotations, TestValidateKeyID).</summary>
public sealed class ApiserverRulesTests
{
    [Theory]
    [InlineData("a.com")]
    [InlineData("10.0.0.1")]
    [InlineData("dev.k8s.io.")]
    [InlineData("kek.kmsplugin.io")]
    [InlineData("a-b.c-d.example")]
    public void Fully_qualified_lowercase_domain_names_are_valid_annotation_keys(string key) =>
        Assert.Null(ApiserverRules.CheckFullyQualifiedDomainName(key));

    [Theory]
    [InlineData("com")]
    [InlineData("Dev.k8s.io")]
    [InlineData("*.example.com")]
    [InlineData("under_score.k8s.io")]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("a..com")]
    [InlineData("-a.com")]
    [InlineData("a-.com")]
    [InlineData("a.com..")]
    public void Other_names_are_invalid_annotation_keys(string key) =>
        Assert.NotNull(ApiserverRules.CheckFullyQualifiedDomainName(key));

    [Fact]
    public void A_label_longer_than_63_characters_is_invalid() =>
        Assert.NotNull(ApiserverRules.CheckFullyQualifiedDomainName(new string('a', 64) + ".com"));

    [Fact]
    public void A_name_longer_than_253_characters_is_invalid()
    {
        var name = string.Join('.', Enumerable.Repeat(new string('a', 60), 5));
        Assert.True(name.Length > 253);
        Assert.NotNull(ApiserverRules.CheckFullyQualifiedDomainName(name));
    }

    [Fact]
    public void Annotations_may_total_exactly_32_KiB_but_not_one_byte_more()
    {
        const string key = "a.com";
        Assert.Null(ApiserverRules.CheckAnnotations([new(key, 32 * 1024 - key.Length)]));
        Assert.NotNull(ApiserverRules.CheckAnnotations([new(key, 32 * 1024 - key.Length + 1)]));
    }

    [Fact]
    public void Key_ids_must_be_1_to_1024_bytes()
    {
        Assert.NotNull(ApiserverRules.CheckKeyId(""));
        Assert.Null(ApiserverRules.CheckKeyId(new string('k', 1024)));
        Assert.NotNull(ApiserverRules.CheckKeyId(new string('k', 1025)));
        Assert.NotNull(ApiserverRules.CheckKeyId(new string('é', 513))); // 1026 UTF-8 bytes
    }

    [Fact]
    public void Ciphertexts_must_be_1_to_1024_bytes()
    {
        Assert.NotNull(ApiserverRules.CheckCiphertext([]));
        Assert.Null(ApiserverRules.CheckCiphertext(new byte[1024]));
        Assert.NotNull(ApiserverRules.CheckCiphertext(new byte[1025]));
    }
}
