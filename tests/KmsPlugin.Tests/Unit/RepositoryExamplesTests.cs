using KmsPlugin.Configuration;
using KmsPlugin.TestSupport;
using YamlDotNet.RepresentationModel;

namespace KmsPlugin.Tests.Unit;

/// <summary>The examples a user copies must stay correct.</summary>
public sealed class RepositoryExamplesTests
{
    private static YamlMappingNode Load(string relativePath)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(Path.Combine(RepositoryRoot.Path, relativePath))));
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    private static string Scalar(YamlNode node, string key) => ((YamlScalarNode)((YamlMappingNode)node).Children[new YamlScalarNode(key)]).Value!;

    [Fact]
    public void EncryptionConfiguration_is_a_v2_kms_provider_on_the_example_socket()
    {
        var root = Load("EncryptionConfiguration.yaml");
        Assert.Equal("apiserver.config.k8s.io/v1", Scalar(root, "apiVersion"));
        Assert.Equal("EncryptionConfiguration", Scalar(root, "kind"));
        var resource = ((YamlSequenceNode)root.Children[new YamlScalarNode("resources")]).Children[0];
        var providers = (YamlSequenceNode)((YamlMappingNode)resource).Children[new YamlScalarNode("providers")];
        var kms = ((YamlMappingNode)providers.Children[0]).Children[new YamlScalarNode("kms")];

        // apiserver validation_encryption.go: apiVersion v2, unix endpoint, a name without ':', no cachesize on v2, timeout > 0.
        Assert.Equal("v2", Scalar(kms, "apiVersion"));
        Assert.DoesNotContain(':', Scalar(kms, "name"));
        Assert.False(((YamlMappingNode)kms).Children.ContainsKey(new YamlScalarNode("cachesize")));
        Assert.True(GoDuration.TryParse(Scalar(kms, "timeout"), out var timeout) && timeout > TimeSpan.Zero);

        var plugin = ConfigLoader.LoadFile(Path.Combine(RepositoryRoot.Path, "docs", "kms-plugin.example.yaml"));
        Assert.Equal(ConfigLoader.ParseListen("endpoint", Scalar(kms, "endpoint")), plugin.SocketPath);
    }
}
