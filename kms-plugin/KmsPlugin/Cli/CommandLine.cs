namespace KmsPlugin.Cli;

/// <summary>
/// A deliberately small argument parser: <c>kms-plugin COMMAND [--option value] [--flag]</c>. Unknown options are
/// errors. Nothing secret is ever accepted on the command line (argv is visible in /proc to every user).
/// </summary>
public sealed class CommandLine
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);

    private CommandLine(string command) => Command = command;

    public string Command { get; }

    public bool Help { get; private set; }

    public bool Has(string option) => _values.ContainsKey(option);

    public string? Value(string option) => _values.TryGetValue(option, out var value) ? value : null;

    /// <param name="spec">For the command: each option name mapped to whether it takes a value.</param>
    public static CommandLine Parse(string command, IReadOnlyList<string> args, IReadOnlyDictionary<string, bool> spec)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(spec);
        var result = new CommandLine(command);
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "--help" or "-h")
            {
                result.Help = true;
                continue;
            }

            string name;
            string? inlineValue = null;
            var equals = arg.IndexOf('=', StringComparison.Ordinal);
            if (arg.StartsWith("--", StringComparison.Ordinal) && equals > 0)
            {
                name = arg[..equals];
                inlineValue = arg[(equals + 1)..];
            }
            else
            {
                name = arg;
            }

            if (!spec.TryGetValue(name, out var takesValue))
            {
                throw new UsageException($"unknown option '{arg}' for '{command}'");
            }

            if (result._values.ContainsKey(name))
            {
                throw new UsageException($"option {name} given twice");
            }

            if (!takesValue)
            {
                if (inlineValue is not null)
                {
                    throw new UsageException($"option {name} takes no value");
                }

                result._values[name] = null;
                continue;
            }

            var value = inlineValue ?? (i + 1 < args.Count ? args[++i] : throw new UsageException($"option {name} needs a value"));
            if (value.Length == 0)
            {
                throw new UsageException($"option {name} needs a value");
            }

            result._values[name] = value;
        }

        return result;
    }
}

/// <summary>Wrong command-line usage: printed with the command's help, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
