using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace KmsPlugin.Configuration;

/// <summary>A mapping node with its field path, for errors that say exactly where the problem is.</summary>
public sealed class ConfigNode(YamlMappingNode mapping, string path)
{
    public string Field(string key) => path.Length == 0 ? key : $"{path}.{key}";

    /// <summary>The node's content in one canonical line (no comments or layout): equal text means equal configuration.</summary>
    public string Canonical => mapping.ToString();

    public void AllowOnly(params string[] keys)
    {
        foreach (var entry in mapping.Children)
        {
            var key = (entry.Key as YamlScalarNode)?.Value ?? "";
            if (!keys.Contains(key, StringComparer.Ordinal))
            {
                var name = string.IsNullOrWhiteSpace(key) ? $"(key at line {entry.Key.Start.Line})" : key;
                throw new ConfigException(Field(name), $"unknown field (line {entry.Key.Start.Line}); allowed here: {string.Join(", ", keys)}");
            }
        }
    }

    private YamlNode? Get(string key) =>
        mapping.Children.TryGetValue(new YamlScalarNode(key), out var node) && !IsNull(node) ? node : null;

    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" };

    public string? Text(string key)
    {
        var node = Get(key);
        if (node is null)
        {
            return null;
        }

        if (node is not YamlScalarNode scalar)
        {
            throw new ConfigException(Field(key), $"must be a single value (line {node.Start.Line})");
        }

        return string.IsNullOrEmpty(scalar.Value) ? throw new ConfigException(Field(key), "must not be empty") : scalar.Value;
    }

    public bool Bool(string key, bool fallback) => Text(key) switch
    {
        null => fallback,
        "true" => true,
        "false" => false,
        var other => throw new ConfigException(Field(key), $"must be true or false, got \"{other}\""),
    };

    public long WholeNumber(string key, long fallback, long min, long max)
    {
        var text = Text(key);
        if (text is null)
        {
            return fallback;
        }

        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw new ConfigException(Field(key), $"must be a whole number from {min} to {max}, got \"{text}\"");
        }

        return value;
    }

    public TimeSpan Duration(string key, TimeSpan fallback, TimeSpan min, TimeSpan max)
    {
        var text = Text(key);
        if (text is null)
        {
            return fallback;
        }

        if (!GoDuration.TryParse(text, out var value))
        {
            throw new ConfigException(Field(key), $"must be a duration such as 30s, 10m or 168h, got \"{text}\"");
        }

        if (value < min || value > max)
        {
            throw new ConfigException(Field(key), $"must be from {GoDuration.Format(min)} to {GoDuration.Format(max)}, got \"{text}\"");
        }

        return value;
    }

    public ConfigNode? Mapping(string key)
    {
        var node = Get(key);
        return node switch
        {
            null => null,
            YamlMappingNode child => new ConfigNode(child, Field(key)),
            _ => throw new ConfigException(Field(key), $"must be a mapping of fields (line {node.Start.Line})"),
        };
    }

    /// <summary>True when the field is present as a mapping (for fields that accept more than one shape).</summary>
    public bool IsMapping(string key) => Get(key) is YamlMappingNode;

    /// <summary>
    /// A mapping of free-form names to single values (e.g. <c>encryptionContext: {cluster: prod}</c>), in file order;
    /// each name non-empty, each value a non-empty scalar. Duplicate names are refused by the YAML parser itself.
    /// </summary>
    public List<KeyValuePair<string, string>>? StringMap(string key) => Mapping(key)?.NamedValues();

    private List<KeyValuePair<string, string>> NamedValues()
    {
        var pairs = new List<KeyValuePair<string, string>>();
        foreach (var entry in mapping.Children)
        {
            var name = (entry.Key as YamlScalarNode)?.Value;
            if (string.IsNullOrEmpty(name))
            {
                throw new ConfigException(path, $"has an entry without a name (line {entry.Key.Start.Line})");
            }

            pairs.Add(new(name, Text(name) ?? throw new ConfigException(Field(name), "must have a value")));
        }

        return pairs;
    }

    public List<ConfigNode>? Sequence(string key)
    {
        var node = Get(key);
        if (node is null)
        {
            return null;
        }

        if (node is not YamlSequenceNode sequence)
        {
            throw new ConfigException(Field(key), $"must be a list (line {node.Start.Line})");
        }

        return sequence.Children.Select((child, i) => child is YamlMappingNode m
            ? new ConfigNode(m, $"{Field(key)}[{i}]")
            : throw new ConfigException($"{Field(key)}[{i}]", "must be a mapping of fields")).ToList();
    }
}
