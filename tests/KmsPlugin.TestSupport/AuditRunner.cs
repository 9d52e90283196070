using System.Text.Json;
using KmsPlugin.Cli;

namespace KmsPlugin.TestSupport;

/// <summary>Runs <c>kms-plugin audit</c> in-process with the same option parsing as the executable.</summary>
public static class AuditRunner
{
    public static async Task<AuditRun> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await AuditCommand.RunAsync(CommandLine.Parse("audit", args, AuditCommand.Options), output, error);
        return new AuditRun(exit, output.ToString(), error.ToString());
    }
}

public sealed record AuditRun(int ExitCode, string Output, string Error)
{
    public JsonElement Json => JsonDocument.Parse(Output).RootElement;

    public JsonElement Resource(string name) => Json.GetProperty("resources").EnumerateArray().Single(r => r.GetProperty("resource").GetString() == name);

    public JsonElement KeyId(string keyId) => Json.GetProperty("keyIds").EnumerateArray().Single(k => k.GetProperty("keyId").GetString() == keyId);

    public override string ToString() => $"exit {ExitCode}\n{Output}\n{Error}";
}
