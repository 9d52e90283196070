using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace KmsPlugin.Benchmarks;

/// <summary>
/// ShortRun, in process. In process because the repository's central package management and warnings-as-errors
/// would also apply to the project BenchmarkDotNet generates for an out-of-process run; and it keeps the plugin's
/// GC settings (workstation, non-concurrent, from Directory.Build.props). ShortRun because the machine is shared:
/// the figures are for orders of magnitude and allocations, which are exact, not for small differences in time.
/// </summary>
public static class BenchConfig
{
    public static IConfig Create() =>
        DefaultConfig.Instance
            .AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance).WithId("ShortRun-InProcess"))
            .AddDiagnoser(MemoryDiagnoser.Default)
            .WithOptions(ConfigOptions.DisableLogFile);
}
