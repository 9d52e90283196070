using System.Diagnostics;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.EndToEnd;

/// <summary>
/// The README's "Run it" section as a user types it: <c>dotnet run --project kms-plugin/KmsPlugin -c Release -- serve
/// --dev</c> puts the socket and the development key in the directory the command was typed in (not the project's,
/// where `dotnet run` would start it by default), so the README's probe command with <c>$PWD</c> passes.
/// </summary>
public sealed class ReadmeRunCommandTests
{
    [Fact]
    public async Task Serve_dev_through_dotnet_run_serves_in_the_directory_it_was_typed_in_and_the_probe_passes()
    {
        using var dir = new TempDirectory();
        var project = Path.Combine(RepositoryRoot.Path, "kms-plugin", "KmsPlugin");
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = dir.Path, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "run", "--project", project, "-c", "Release", "--no-build", "--", "serve", "--dev" })
        {
            start.ArgumentList.Add(arg); // --no-build: the test run has built the solution in Release already
        }

        using var run = Process.Start(start)!;
        run.BeginOutputReadLine(); // drained, so the plugin never blocks on a full pipe
        run.BeginErrorReadLine();
        try
        {
            var socket = dir.FilePath("kms-plugin.sock");
            await PluginProcess.WaitUntilServingAsync(socket, () => run.HasExited ? $"dotnet run exited with {run.ExitCode}" : null,
                () => $"nothing serves in the directory dotnet run was started from ({dir.Path})");
            Assert.True(File.Exists(dir.FilePath("kms-plugin-dev-root.key")));
            Assert.False(File.Exists(Path.Combine(project, "kms-plugin.sock")));

            var (exit, output) = await PluginProcess.RunAsync(dir.Path, null, "probe", "--listen", "unix://" + socket);
            Assert.True(exit == 0, output);
            Assert.Contains("probe: OK", output, StringComparison.Ordinal);
        }
        finally
        {
            run.Kill(entireProcessTree: true);
            await run.WaitForExitAsync();
        }
    }
}
