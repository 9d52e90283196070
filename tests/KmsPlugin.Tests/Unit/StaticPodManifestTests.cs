using KmsPlugin.Configuration;
using KmsPlugin.TestSupport;
using YamlDotNet.RepresentationModel;

namespace KmsPlugin.Tests.Unit;

/// <summary>The deployment manifests parse, carry the hardening they promise, and agree on the socket.</summary>
public sealed class StaticPodManifestTests
{
    private static YamlMappingNode Load(string relativePath)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(Path.Combine(RepositoryRoot.Path, relativePath))));
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    private static YamlNode At(YamlNode node, params object[] path)
    {
        foreach (var step in path)
        {
            node = step is int i ? ((YamlSequenceNode)node).Children[i] : ((YamlMappingNode)node).Children[new YamlScalarNode((string)step)];
        }

        return node;
    }

    private static string Text(YamlNode node, params object[] path) => ((YamlScalarNode)At(node, path)).Value!;

    [Fact]
    public void The_plugin_pod_is_hardened_and_probed()
    {
        var pod = Load("static-pod/kms-plugin.yaml");
        Assert.Equal("system-node-critical", Text(pod, "spec", "priorityClassName"));
        Assert.Equal("true", Text(pod, "spec", "securityContext", "runAsNonRoot"));
        Assert.Equal("RuntimeDefault", Text(pod, "spec", "securityContext", "seccompProfile", "type"));
        var container = At(pod, "spec", "containers", 0);
        Assert.Equal("true", Text(container, "securityContext", "readOnlyRootFilesystem"));
        Assert.Equal("false", Text(container, "securityContext", "allowPrivilegeEscalation"));
        Assert.Equal("ALL", Text(container, "securityContext", "capabilities", "drop", 0));
        Assert.Equal("/livez", Text(container, "livenessProbe", "httpGet", "path"));
        Assert.Equal("/readyz", Text(container, "readinessProbe", "httpGet", "path"));

        // The probes reach the health listener the example configuration opens (host network, loopback only).
        var example = ConfigLoader.LoadFile(Path.Combine(RepositoryRoot.Path, "docs", "kms-plugin.example.yaml"));
        foreach (var probe in new[] { "livenessProbe", "readinessProbe" })
        {
            Assert.Equal(example.Health.ListenHost, Text(container, probe, "httpGet", "host"));
            Assert.Equal(example.Health.ListenPort.ToString(System.Globalization.CultureInfo.InvariantCulture), Text(container, probe, "httpGet", "port"));
        }

        Assert.Equal("true", Text(pod, "spec", "hostNetwork"));
        Assert.NotNull(At(container, "resources", "requests", "memory"));

        // The read-only root filesystem leaves the state directory (key_id history) on a hostPath that survives restarts.
        var mounts = ((YamlSequenceNode)At(container, "volumeMounts")).Children;
        var state = mounts.Single(m => Text(m, "mountPath") == "/var/lib/kms-plugin");
        var volume = ((YamlSequenceNode)At(pod, "spec", "volumes")).Children.Single(v => Text(v, "name") == Text(state, "name"));
        Assert.Equal("/var/lib/kms-plugin", Text(volume, "hostPath", "path"));
        Assert.Equal("Directory", Text(volume, "hostPath", "type")); // not DirectoryOrCreate: the kubelet would make it 0755 root-owned
    }

    [Fact]
    public void The_image_the_Dockerfile_builds_is_the_one_the_pod_runs_entry_point_and_user()
    {
        var dockerfile = File.ReadAllLines(Path.Combine(RepositoryRoot.Path, "static-pod", "Dockerfile"));
        var final = dockerfile.Reverse().TakeWhile(l => !l.StartsWith("FROM ", StringComparison.Ordinal)).ToList();
        var entryPoint = final.Single(l => l.StartsWith("ENTRYPOINT ", StringComparison.Ordinal));
        var user = final.Single(l => l.StartsWith("USER ", StringComparison.Ordinal))["USER ".Length..].Split(':');

        var pod = Load("static-pod/kms-plugin.yaml");
        var command = Text(pod, "spec", "containers", 0, "command", 0);
        Assert.Equal($"ENTRYPOINT [\"{command}\"]", entryPoint);
        Assert.Equal(Text(pod, "spec", "securityContext", "runAsUser"), user[0]);
        Assert.Equal(Text(pod, "spec", "securityContext", "runAsGroup"), user[1]);

        // What the build publishes is the plugin the rest of the repository documents, and it lands where the command points.
        Assert.Contains(dockerfile, l => l == $"RUN dotnet publish kms-plugin/KmsPlugin -c Release -o {Path.GetDirectoryName(command)}");
        Assert.Contains(dockerfile, l => l.StartsWith("FROM mcr.microsoft.com/dotnet/aspnet:10.0", StringComparison.Ordinal));
    }

    [Fact]
    public void Plugin_apiserver_and_EncryptionConfiguration_agree_on_the_socket_directory()
    {
        var endpoint = Text(Load("EncryptionConfiguration.yaml"), "resources", 0, "providers", 0, "kms", "endpoint");
        var socketDirectory = Path.GetDirectoryName(ConfigLoader.ParseListen("endpoint", endpoint))!;

        var plugin = Load("static-pod/kms-plugin.yaml");
        var apiserver = Load("static-pod/kube-apiserver-changes.yaml");
        Assert.Contains(((YamlSequenceNode)At(plugin, "spec", "containers", 0, "volumeMounts")).Children, m => Text(m, "mountPath") == socketDirectory);
        Assert.Contains(((YamlSequenceNode)At(plugin, "spec", "volumes")).Children, v => Text(v, "hostPath", "path") == socketDirectory);
        Assert.Contains(((YamlSequenceNode)At(apiserver, "spec", "containers", 0, "volumeMounts")).Children, m => Text(m, "mountPath") == socketDirectory);
        Assert.Contains(((YamlSequenceNode)At(apiserver, "spec", "volumes")).Children, v => Text(v, "hostPath", "path") == socketDirectory);

        var flags = ((YamlSequenceNode)At(apiserver, "spec", "containers", 0, "command")).Children.Select(c => ((YamlScalarNode)c).Value).ToList();
        Assert.Contains("--encryption-provider-config=/etc/kubernetes/enc/EncryptionConfiguration.yaml", flags);
        Assert.Contains("--encryption-provider-config-automatic-reload=true", flags);

        // The plugin's health port in the probes is the one the example config listens on.
        var config = ConfigLoader.LoadFile(Path.Combine(RepositoryRoot.Path, "docs", "kms-plugin.example.yaml"));
        Assert.Equal(config.Health.ListenPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            Text(plugin, "spec", "containers", 0, "livenessProbe", "httpGet", "port"));
        Assert.Equal(socketDirectory, Path.GetDirectoryName(config.SocketPath));
    }

    [Fact]
    public void The_systemd_unit_runs_serve_with_a_config_and_owns_the_socket_directory()
    {
        var unit = File.ReadAllText(Path.Combine(RepositoryRoot.Path, "static-pod", "kms-plugin.service"));
        Assert.Contains("ExecStart=/opt/kms-plugin/kms-plugin serve --config /etc/kms-plugin/config.yaml", unit, StringComparison.Ordinal);
        Assert.Contains("RuntimeDirectory=kmsplugin", unit, StringComparison.Ordinal);
        Assert.Contains("Before=kubelet.service", unit, StringComparison.Ordinal);
        Assert.Contains("StateDirectory=kms-plugin", unit, StringComparison.Ordinal);
        Assert.Contains("StateDirectoryMode=0700", unit, StringComparison.Ordinal);
        Assert.Contains("ExecReload=/bin/kill -HUP $MAINPID", unit, StringComparison.Ordinal);
    }
}
