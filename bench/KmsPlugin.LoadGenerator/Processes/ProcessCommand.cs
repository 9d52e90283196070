namespace KmsPlugin.LoadGenerator.Processes;

/// <summary>A program and its arguments. A <c>.dll</c> runs under the <c>dotnet</c> host; anything else (an apphost,
/// a ReadyToRun or Native AOT build) runs directly, so the same bench measures every build variant.</summary>
internal sealed record ProcessCommand(string FileName, IReadOnlyList<string> Arguments)
{
    /// <summary>Extra environment for the child (e.g. DOTNET_TieredPGO=0 to try a runtime setting on the plugin alone).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>kms-plugin.dll, copied beside kms-plugin-bench.dll by the project reference.</summary>
    public static string DefaultPlugin { get; } = Path.Combine(AppContext.BaseDirectory, "kms-plugin.dll");

    /// <summary>This load generator, for its own server subcommands (noop-server, latency-plugin).</summary>
    public static string Self { get; } = typeof(ProcessCommand).Assembly.Location;

    public static ProcessCommand For(string program, params string[] arguments) =>
        program.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)
            ? new ProcessCommand(DotnetHost(), [program, .. arguments])
            : new ProcessCommand(program, arguments);

    public ProcessCommand WithEnvironment(IReadOnlyDictionary<string, string> environment) => this with { Environment = environment };

    public override string ToString() => FileName + " " + string.Join(' ', Arguments);

    // The host running this process when it is dotnet (so the same runtime runs the children), else dotnet from PATH.
    private static string DotnetHost() =>
        System.Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path : "dotnet";
}
