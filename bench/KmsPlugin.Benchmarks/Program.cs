using BenchmarkDotNet.Running;
using KmsPlugin.Benchmarks;

// dotnet run -c Release --project bench/KmsPlugin.Benchmarks -- --filter '*'   (see bench/README.md)
BenchmarkSwitcher.FromAssembly(typeof(BenchConfig).Assembly).Run(args, BenchConfig.Create());
