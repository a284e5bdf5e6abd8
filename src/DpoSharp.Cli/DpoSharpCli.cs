using System.CommandLine;
using DpoSharp.Cli.Commands;
using Spectre.Console;

namespace DpoSharp.Cli;

/// <summary>The <c>dposharp</c> command line: thin commands over the library.</summary>
public static class DpoSharpCli
{
    /// <summary>Exit code for bad input (a file, a row, a field, an option): the message says what to do.</summary>
    public const int BadInputExitCode = 2;

    /// <summary>Builds the root command with every sub-command.</summary>
    public static Command Build()
    {
        // A plain Command (not RootCommand) so usage reads `dposharp`, not the assembly name.
        var root = new Command("dposharp", "DpoSharp: preference fine-tuning (DPO and its family) for causal language models, in .NET.")
        {
            new System.CommandLine.Help.HelpOption(),
            new VersionOption(),
        };
        root.Subcommands.Add(InfoCommand.Create());
        root.Subcommands.Add(TokenizeCommand.Create());
        root.Subcommands.Add(DataCommand.Create());
        root.Subcommands.Add(ScoreCommand.Create());
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        return root;
    }

    /// <summary>Parses and runs; returns the process exit code (0 ok, 1 failure, 2 bad input).</summary>
    public static int Run(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        // DpoSharpException must reach the catch below (exit 2), not System.CommandLine's handler (exit 1).
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        if (output is not null)
        {
            config.Output = output;
        }

        if (error is not null)
        {
            config.Error = error;
        }

        var errWriter = error ?? Console.Error;
        try
        {
            var parse = Build().Parse(args);
            if (parse.Errors.Count > 0 && parse.Action is not System.CommandLine.Help.HelpAction)
            {
                foreach (var e in parse.Errors)
                {
                    WriteError(errWriter, e.Message);
                }

                errWriter.WriteLine("Run 'dposharp --help' for usage.");
                return BadInputExitCode;
            }

            return parse.Invoke(config);
        }
        catch (DpoSharpException e)
        {
            WriteError(errWriter, e.Message);
            return BadInputExitCode;
        }
    }

    /// <summary>Writes "error: ..." to the error stream (plain text: it is often redirected).</summary>
    public static void WriteError(TextWriter err, string message) => err.WriteLine("error: " + message);

    /// <summary>Console for rich output; falls back to plain text when redirected.</summary>
    public static IAnsiConsole CreateConsole(TextWriter output) => AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(output),
    });
}
