using DpoSharp.Cli;

return DpoSharpCli.Run(args);
