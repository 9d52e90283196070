using System.Text.RegularExpressions;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.Unit;

/// <summary>
/// The code in the repository's Markdown, as a reader copies it: fenced blocks (with the language of their info
/// string, indentation of list items removed) and inline code spans, each with its file and line so that a failing
/// check says where to look; and the <c>kms-plugin COMMAND --option ...</c> invocations written in them.
/// </summary>
internal static partial class MarkdownSnippets
{
    /// <summary>Fenced blocks of these languages, and inline code, are read as shell commands.</summary>
    private static readonly string[] ShellLanguages = ["sh", "bash", "shell", "console", Inline];

    public const string Inline = "inline";

    public sealed record Snippet(string File, int Line, string Language, string Text)
    {
        public override string ToString() => $"{File}:{Line}";
    }

    public sealed record Invocation(Snippet Where, string Command, IReadOnlyList<string> Options, string Text);

    /// <summary>README.md and every Markdown file under docs/, relative to the repository root.</summary>
    public static IReadOnlyList<string> DocumentationFiles() =>
    [
        Path.Combine(RepositoryRoot.Path, "README.md"),
        .. Directory.GetFiles(Path.Combine(RepositoryRoot.Path, "docs"), "*.md", SearchOption.AllDirectories).Order(StringComparer.Ordinal),
    ];

    public static IReadOnlyList<Snippet> Read(string path)
    {
        var lines = File.ReadAllLines(path);
        var name = Path.GetRelativePath(RepositoryRoot.Path, path);
        var snippets = new List<Snippet>();
        for (var i = 0; i < lines.Length; i++)
        {
            var fence = FenceOpen().Match(lines[i]);
            if (fence.Success)
            {
                var indent = fence.Groups["indent"].Value.Length;
                var ticks = fence.Groups["ticks"].Value;
                var start = i + 1;
                var body = new List<string>();
                for (i++; i < lines.Length && !IsFenceClose(lines[i], ticks); i++)
                {
                    var line = lines[i];
                    body.Add(line.Length >= indent && string.IsNullOrWhiteSpace(line[..indent]) ? line[indent..] : line.TrimStart());
                }

                snippets.Add(new Snippet(name, start + 1, fence.Groups["lang"].Value.Trim().ToLowerInvariant(), string.Join('\n', body)));
                continue;
            }

            foreach (Match span in InlineCode().Matches(lines[i]))
            {
                snippets.Add(new Snippet(name, i + 1, Inline, span.Groups["code"].Value));
            }
        }

        return snippets;
    }

    /// <summary>
    /// Every <c>kms-plugin COMMAND</c> in shell blocks, and inline code that starts with one (other inline code quotes
    /// messages, where "kms-plugin" is a provider name), with the options (<c>--name</c>) written after it up to the
    /// end of that command (a pipe, <c>;</c>, <c>&amp;&amp;</c>, a redirection, a comment, a closing quote or
    /// parenthesis, the end of the line; backslash continuations are joined).
    /// </summary>
    public static IEnumerable<Invocation> Invocations(Snippet snippet)
    {
        ArgumentNullException.ThrowIfNull(snippet);
        if (!ShellLanguages.Contains(snippet.Language, StringComparer.Ordinal))
        {
            yield break;
        }

        var text = snippet.Text.Replace("\\\n", " ", StringComparison.Ordinal);
        foreach (Match call in Command().Matches(text))
        {
            if (snippet.Language == Inline && !string.IsNullOrWhiteSpace(text[..call.Index]))
            {
                continue;
            }

            var rest = text[(call.Index + call.Length)..];
            var end = CommandEnd().Match(rest);
            var arguments = end.Success ? rest[..end.Index] : rest;
            var options = Option().Matches(arguments).Select(m => m.Value).ToList();
            yield return new Invocation(snippet, call.Groups["command"].Value, options, (call.Value + arguments).Trim());
        }
    }

    private static bool IsFenceClose(string line, string ticks)
    {
        var trimmed = line.Trim();
        return trimmed.Length >= ticks.Length && trimmed.All(c => c == '`');
    }

    [GeneratedRegex(@"^(?<indent>[ \t]*)(?<ticks>`{3,})(?<lang>[^`]*)$")]
    private static partial Regex FenceOpen();

    [GeneratedRegex(@"(?<ticks>`+)(?<code>.+?)\k<ticks>")]
    private static partial Regex InlineCode();

    // The executable, possibly in an installation directory (/opt/kms-plugin/kms-plugin, /usr/local/bin/kms-plugin,
    // /app/kms-plugin), but not a word that merely ends in the name (kms:v2:kms-plugin, /var/lib/kms-plugin,
    // role/kms-plugin, names=kms-plugin) nor one followed by an option (journalctl -u kms-plugin -n 50).
    [GeneratedRegex(@"(?:(?<![\w.:/-])[^\s`'""=]*/(?:kms-plugin|bin|app)/|(?<![\w.:/=-]))kms-plugin[ \t]+(?<command>[a-z][a-z0-9-]*)")]
    private static partial Regex Command();

    [GeneratedRegex(@"\||;|&&|\s>|\s2>|\s#|\)|'|""|\n|kms-plugin[ \t]+[a-z]")]
    private static partial Regex CommandEnd();

    [GeneratedRegex(@"(?<![\w-])--[a-z][a-z0-9-]*")]
    private static partial Regex Option();
}
