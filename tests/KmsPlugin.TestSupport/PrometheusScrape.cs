using System.Globalization;
using System.Text;

namespace KmsPlugin.TestSupport;

/// <summary>One sample of a Prometheus text exposition: <c>name{label="value",...} value</c>.</summary>
public sealed record PrometheusSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    public bool Matches(params (string Label, string Value)[] labels) =>
        labels.All(l => Labels.TryGetValue(l.Label, out var value) && value == l.Value);
}

/// <summary>
/// A scrape of a <c>/metrics</c> endpoint, parsed from the Prometheus text format 0.0.4
/// (prometheus.io/docs/instrumenting/exposition_formats): <c># TYPE</c> lines and samples, with label values
/// unescaped (<c>\\</c>, <c>\"</c>, <c>\n</c>). Timestamps, if any, are ignored.
/// </summary>
public sealed class PrometheusScrape
{
    private PrometheusScrape(string text, IReadOnlyList<PrometheusSample> samples, IReadOnlyDictionary<string, string> types)
    {
        Text = text;
        Samples = samples;
        Types = types;
    }

    /// <summary>The body as served.</summary>
    public string Text { get; }

    public IReadOnlyList<PrometheusSample> Samples { get; }

    /// <summary>Family name → <c>counter</c>, <c>gauge</c>, <c>histogram</c>...</summary>
    public IReadOnlyDictionary<string, string> Types { get; }

    /// <summary>GET http://127.0.0.1:<paramref name="port"/>/metrics; fails on any status but 200.</summary>
    public static async Task<PrometheusScrape> GetAsync(int port)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };
        using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/metrics"));
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"/metrics answered {(int)response.StatusCode}: {body}");
        }

        return Parse(body);
    }

    public static PrometheusScrape Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var samples = new List<PrometheusSample>();
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line["# TYPE ".Length..].Split(' ', 2);
                types[parts[0]] = parts[1];
            }
            else if (line.Length > 0 && line[0] != '#')
            {
                samples.Add(ParseSample(line));
            }
        }

        return new PrometheusScrape(text, samples, types);
    }

    /// <summary>Every sample of <paramref name="name"/> whose labels include all of <paramref name="labels"/>.</summary>
    public IEnumerable<PrometheusSample> All(string name, params (string Label, string Value)[] labels) =>
        Samples.Where(s => s.Name == name && s.Matches(labels));

    /// <summary>The sum of the matching samples' values; 0 when none match.</summary>
    public double Sum(string name, params (string Label, string Value)[] labels) => All(name, labels).Sum(s => s.Value);

    /// <summary>The one matching sample's value; fails when there is none or more than one.</summary>
    public double Value(string name, params (string Label, string Value)[] labels)
    {
        var matches = All(name, labels).ToList();
        return matches.Count == 1
            ? matches[0].Value
            : throw new InvalidOperationException($"{matches.Count} samples of {name} with {string.Join(',', labels)}:\n{Text}");
    }

    private static PrometheusSample ParseSample(string line)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        var i = 0;
        while (i < line.Length && line[i] != '{' && line[i] != ' ')
        {
            i++;
        }

        var name = line[..i];
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (line[i] != '}')
            {
                var eq = line.IndexOf('=', i);
                var label = line[i..eq].Trim(' ', ',');
                i = eq + 2; // past ="
                var value = new StringBuilder();
                for (; line[i] != '"'; i++)
                {
                    if (line[i] == '\\')
                    {
                        i++;
                        value.Append(line[i] == 'n' ? '\n' : line[i]);
                    }
                    else
                    {
                        value.Append(line[i]);
                    }
                }

                labels[label] = value.ToString();
                i++; // past the closing quote
                if (line[i] == ',')
                {
                    i++;
                }
            }

            i++; // past }
        }

        var fields = line[i..].Trim().Split(' ');
        var number = fields[0] switch
        {
            "+Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            "NaN" => double.NaN,
            var n => double.Parse(n, NumberStyles.Float, CultureInfo.InvariantCulture),
        };
        return new PrometheusSample(name, labels, number);
    }
}
