using KmsPlugin.Configuration;

namespace KmsPlugin.TestSupport;

/// <summary>
/// A plugin configuration for provider tests, written as YAML and parsed as the plugin parses its file: a fresh socket
/// in the test's directory, warnings-only logging, and a 10-minute probe interval so the background probe (and the
/// version follower after it) runs once at start and tests that count remote calls probe or observe explicitly.
/// </summary>
public static class PluginYaml
{
    /// <param name="directory">Where the socket goes; relative paths in the entries resolve against it.</param>
    /// <param name="rootKeys">The <c>rootKeys</c> list items (each starting <c>"  - name: ..."</c>), first is the primary.</param>
    /// <param name="healthPort">When set, <c>health.listen</c> on 127.0.0.1 at this port (<c>/readyz</c>, <c>/metrics</c>); see <see cref="FreeTcpPort"/>.</param>
    /// <param name="topLevel">More top-level YAML (e.g. <c>"rootKeyTimeout: 3s"</c>, a <c>rotation</c> block).</param>
    public static PluginConfig Parse(TempDirectory directory, IEnumerable<string> rootKeys, int? healthPort = null, string topLevel = "")
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(rootKeys);
        var yaml = $"""
            listen: unix://{directory.FilePath($"kms-{Guid.NewGuid():N}"[..12] + ".sock")}
            logging:
              level: warning
            health:
              probeInterval: 10m
            {(healthPort is { } port ? $"  listen: 127.0.0.1:{port}" : "")}
            {topLevel.TrimEnd()}
            rootKeys:
            {string.Join("\n", rootKeys)}

            """;
        return ConfigLoader.Parse(yaml, directory.Path);
    }
}
