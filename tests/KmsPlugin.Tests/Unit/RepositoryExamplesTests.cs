using System.Text.RegularExpressions;
using KmsPlugin.Configuration;
using KmsPlugin.TestSupport;
using YamlDotNet.RepresentationModel;

namespace KmsPlugin.Tests.Unit;

/// <summary>The examples a user copies must stay correct: commands, plugin configurations and EncryptionConfigurations in README.md and docs/.</summary>
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

    /// <summary>The runbooks added for issue 4: each must name at least one real command (they are reviewed against them).</summary>
    private static readonly string[] Runbooks =
        ["rotation.md", "migrate-to-kms.md", "migrate-between-backends.md", "disaster-recovery.md", "troubleshooting.md"];

    [Fact]
    public async Task Every_kms_plugin_command_in_the_docs_is_a_real_command_with_options_its_help_lists()
    {
        var invocations = MarkdownSnippets.DocumentationFiles().SelectMany(MarkdownSnippets.Read).SelectMany(MarkdownSnippets.Invocations).ToList();
        foreach (var runbook in Runbooks)
        {
            Assert.Contains(invocations, i => i.Where.File == Path.Combine("docs", runbook));
        }

        var (mainExit, mainHelp) = await PluginProcess.RunAsync(RepositoryRoot.Path, null, "--help");
        Assert.Equal(0, mainExit);
        var commands = CommandsListedIn(mainHelp);
        Assert.Contains("audit", commands);

        var help = new Dictionary<string, string>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var invocation in invocations)
        {
            if (!commands.Contains(invocation.Command))
            {
                problems.Add($"{invocation.Where}: `{invocation.Text}`: '{invocation.Command}' is not a kms-plugin command ({string.Join(", ", commands)})");
                continue;
            }

            if (!help.TryGetValue(invocation.Command, out var text))
            {
                var (exit, output) = await PluginProcess.RunAsync(RepositoryRoot.Path, null, invocation.Command, "--help");
                Assert.True(exit == 0, $"kms-plugin {invocation.Command} --help exited {exit}:\n{output}");
                help[invocation.Command] = text = output;
            }

            // Every command takes --help (CommandLine.Parse); the rest must be in that command's own help text.
            foreach (var option in invocation.Options.Where(o => o != "--help"))
            {
                if (!Regex.IsMatch(text, $@"(?<![\w-]){Regex.Escape(option)}(?![\w-])"))
                {
                    problems.Add($"{invocation.Where}: `{invocation.Text}`: 'kms-plugin {invocation.Command} --help' does not list {option}");
                }
            }
        }

        Assert.True(problems.Count == 0, string.Join('\n', problems));
        Assert.True(invocations.Count >= 40, $"only {invocations.Count} kms-plugin invocations found: is the Markdown reader still finding them?");
    }

    [Fact]
    public void Every_plugin_configuration_block_in_the_docs_parses_with_the_config_loader()
    {
        var topLevel = PluginTopLevelFields();
        var checkedBlocks = new List<MarkdownSnippets.Snippet>();
        var problems = new List<string>();
        foreach (var block in MarkdownSnippets.DocumentationFiles().SelectMany(MarkdownSnippets.Read).Where(s => s.Language is "yaml" or "yml"))
        {
            var keys = TopLevelKeys(block.Text);
            if (keys is null)
            {
                // Not a single YAML mapping: a fragment (list items, an indented excerpt). A plugin configuration never is.
                if (block.Text.Contains("rootKeys:", StringComparison.Ordinal))
                {
                    problems.Add($"{block}: a block with rootKeys that is not a YAML mapping");
                }

                continue;
            }

            // Kubernetes objects (EncryptionConfiguration, manifests) and other tools' files are not plugin configurations.
            if (keys.Contains("apiVersion") || keys.Contains("kind") || !keys.Overlaps(topLevel))
            {
                continue;
            }

            // Excerpts show the fields they are about: complete them with a socket and a root key where they have none.
            var text = block.Text;
            if (!keys.Contains("listen"))
            {
                text = "listen: unix:///var/run/kmsplugin/kms.sock\n" + text;
            }

            if (!keys.Contains("rootKeys"))
            {
                text += "\nrootKeys:\n  - name: doc-example\n    provider: local\n    local: { keyFile: /etc/kms-plugin/root.key }\n";
            }

            try
            {
                ConfigLoader.Parse(text, "/etc/kms-plugin");
                checkedBlocks.Add(block);
            }
            catch (ConfigException e)
            {
                problems.Add($"{block}: {e.Message}");
            }
        }

        Assert.True(problems.Count == 0, string.Join('\n', problems));
        foreach (var runbook in new[] { "rotation.md", "migrate-between-backends.md", "disaster-recovery.md" })
        {
            Assert.Contains(checkedBlocks, b => b.File == Path.Combine("docs", runbook));
        }
    }

    [Fact]
    public void Every_EncryptionConfiguration_in_the_docs_follows_the_apiserver_validation_rules()
    {
        var checkedBlocks = 0;
        var problems = new List<string>();
        foreach (var block in MarkdownSnippets.DocumentationFiles().SelectMany(MarkdownSnippets.Read).Where(s => s.Language is "yaml" or "yml"))
        {
            var stream = new YamlStream();
            try
            {
                stream.Load(new StringReader(block.Text));
            }
            catch (YamlDotNet.Core.YamlException)
            {
                continue;
            }

            if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root
                || !root.Children.TryGetValue(new YamlScalarNode("kind"), out var kind) || kind.ToString() != "EncryptionConfiguration")
            {
                continue;
            }

            checkedBlocks++;
            problems.AddRange(EncryptionConfigurationProblems(root).Select(p => $"{block}: {p}"));
        }

        Assert.True(problems.Count == 0, string.Join('\n', problems));
        Assert.True(checkedBlocks >= 5, $"only {checkedBlocks} EncryptionConfiguration blocks found");
    }

    /// <summary>apiserver validation_encryption.go and defaults.go for kms providers: apiVersion v1 or v2 (empty means v1), a name without ':' unique across the file, a unix endpoint, no cachesize on v2, a positive timeout.</summary>
    private static IEnumerable<string> EncryptionConfigurationProblems(YamlMappingNode root)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var resources = (YamlSequenceNode)root.Children[new YamlScalarNode("resources")];
        foreach (var resource in resources.Children.Cast<YamlMappingNode>())
        {
            foreach (var provider in ((YamlSequenceNode)resource.Children[new YamlScalarNode("providers")]).Children.Cast<YamlMappingNode>())
            {
                if (!provider.Children.TryGetValue(new YamlScalarNode("kms"), out var node))
                {
                    continue;
                }

                var kms = (YamlMappingNode)node;
                string? Field(string key) => kms.Children.TryGetValue(new YamlScalarNode(key), out var value) ? ((YamlScalarNode)value).Value : null;
                var apiVersion = Field("apiVersion") ?? "v1";
                var name = Field("name") ?? "";
                if (apiVersion is not ("v1" or "v2"))
                {
                    yield return $"kms apiVersion must be v1 or v2, got {apiVersion}";
                }

                if (name.Length == 0 || name.Contains(':', StringComparison.Ordinal) || !names.Add(name))
                {
                    yield return $"kms name \"{name}\" must be set, without ':' and unique across the file";
                }

                if (Field("endpoint") is not { } endpoint || !endpoint.StartsWith(ConfigLoader.ListenScheme, StringComparison.Ordinal))
                {
                    yield return $"kms {name}: endpoint must be a unix:// URL";
                }

                if (apiVersion == "v2" && Field("cachesize") is not null)
                {
                    yield return $"kms {name}: cachesize is not supported in v2";
                }

                if (Field("timeout") is { } timeout && !(GoDuration.TryParse(timeout, out var value) && value > TimeSpan.Zero))
                {
                    yield return $"kms {name}: timeout must be a positive duration, got {timeout}";
                }
            }
        }
    }

    /// <summary>The top-level keys of a single YAML mapping, or null when the text is not one.</summary>
    private static HashSet<string>? TopLevelKeys(string yaml)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlDotNet.Core.YamlException)
        {
            return null;
        }

        return stream.Documents.Count == 1 && stream.Documents[0].RootNode is YamlMappingNode root
            ? root.Children.Keys.OfType<YamlScalarNode>().Select(k => k.Value ?? "").ToHashSet(StringComparer.Ordinal)
            : null;
    }

    /// <summary>
    /// The configuration's top-level field names, as the loader itself lists them when it meets an unknown one (so a
    /// field added to the loader is recognised here without touching this test).
    /// </summary>
    private static HashSet<string> PluginTopLevelFields()
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("listen: unix:///var/run/kmsplugin/kms.sock\nnot-a-field: 1\n", "/"));
        const string marker = "allowed here: ";
        var at = error.Message.IndexOf(marker, StringComparison.Ordinal);
        Assert.True(at >= 0, error.Message);
        var fields = error.Message[(at + marker.Length)..].Split(", ", StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
        Assert.Contains("rootKeys", fields);
        return fields;
    }

    /// <summary>The names in the "Commands:" section of <c>kms-plugin --help</c>.</summary>
    private static HashSet<string> CommandsListedIn(string mainHelp)
    {
        var section = mainHelp[(mainHelp.IndexOf("Commands:", StringComparison.Ordinal) + "Commands:".Length)..];
        return section.Split('\n')
            .SkipWhile(string.IsNullOrWhiteSpace)
            .TakeWhile(line => !string.IsNullOrWhiteSpace(line))
            .Select(line => line.Trim().Split(' ')[0])
            .ToHashSet(StringComparer.Ordinal);
    }
}
