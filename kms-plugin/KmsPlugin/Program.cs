using KmsPlugin.Cli;

return await Commands.RunAsync(args);
