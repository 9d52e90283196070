using KmsPlugin.LoadGenerator;

return await BenchCommands.RunAsync(args);
