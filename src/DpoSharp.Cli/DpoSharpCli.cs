using System.CommandLine;
using System.CommandLine.Invocation;
using DpoSharp.Cli.Commands;
using DpoSharp.Cli.Terminal;
using Spectre.Console;

namespace DpoSharp.Cli;

/// <summary>The <c>dposharp</c> command line: thin commands over the library.</summary>
public static class DpoSharpCli
{
    /// <summary>Exit code of a command that did what it was asked.</summary>
    public const int SuccessExitCode = 0;

    /// <summary>Exit code of a bug in dposharp (an unexpected exception): the message says how to report it.</summary>
    public const int BugExitCode = 1;

    /// <summary>Exit code for bad input or environment (a file, a row, a field, an option, a path, the disk): the
    /// message names it and says what to do.</summary>
    public const int BadInputExitCode = 2;

    /// <summary>Exit code of a run stopped by Ctrl-C / SIGTERM (resumable from the checkpoint it wrote): <see cref="InterruptSignals.ExitCode"/>.</summary>
    public const int InterruptedExitCode = InterruptSignals.ExitCode;

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
        root.Subcommands.Add(MergeCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(SftCommand.Create());
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        return root;
    }

    private static readonly AsyncLocal<CliInvocation?> CurrentInvocation = new();

    /// <summary>The command line being run and its error stream (null outside <see cref="Run"/>): what an
    /// interrupted run prints to say how to continue it.</summary>
    internal static CliInvocation? Invocation => CurrentInvocation.Value;

    /// <summary>Parses and runs; returns the process exit code (0 ok, 1 failure, 2 bad input, 130 interrupted).</summary>
    /// <param name="args">The arguments after <c>dposharp</c>.</param>
    /// <param name="output">Standard output (default: the console).</param>
    /// <param name="error">Standard error (default: the console).</param>
    /// <param name="cancellationToken">Stops <c>train</c>, <c>sft</c> and <c>demo</c> as Ctrl-C does (after the
    /// current optimizer step, with a checkpoint).</param>
    public static int Run(string[] args, TextWriter? output = null, TextWriter? error = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);

        // DpoSharpException must reach the catch below (exit 2), not System.CommandLine's handler (exit 1).
        // ProcessTerminationTimeout null: System.CommandLine registers no Ctrl-C handler of its own (it would force
        // exit 130 two seconds after Ctrl-C, in the middle of writing a checkpoint); InterruptSignals does it.
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null };
        if (output is not null)
        {
            config.Output = output;
        }

        if (error is not null)
        {
            config.Error = error;
        }

        var errWriter = error ?? Console.Error;
        CurrentInvocation.Value = new CliInvocation(args, errWriter);
        try
        {
            var parse = Build().Parse(args);
            if (parse.Errors.Count > 0 && parse.Action is not System.CommandLine.Help.HelpAction)
            {
                foreach (var line in UnknownOptions.Describe(parse))
                {
                    WriteError(errWriter, line);
                }

                errWriter.WriteLine("Run 'dposharp --help' for usage.");
                return BadInputExitCode;
            }

            return Invoke(parse, config, errWriter, cancellationToken);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return Fail(e, errWriter);
        }
        finally
        {
            CurrentInvocation.Value = null;
        }
    }

    /// <summary>
    /// Runs the parsed command. Commands whose action takes a cancellation token (<c>train</c>, <c>sft</c>,
    /// <c>demo</c>) get one that Ctrl-C / SIGTERM cancels (<see cref="InterruptSignals"/>: stop after the current
    /// step and checkpoint it; a second signal exits at once); the others keep the default signal behaviour.
    /// </summary>
    private static int Invoke(ParseResult parse, InvocationConfiguration config, TextWriter error, CancellationToken cancellationToken)
    {
        if (parse.Action is not AsynchronousCommandLineAction)
        {
            return parse.Invoke(config);
        }

        using var signals = new InterruptSignals(cancellationToken, error);
        return parse.InvokeAsync(config, signals.Token).GetAwaiter().GetResult();
    }

    /// <summary>
    /// The exit-code contract for an exception that ends a command: <see cref="DpoSharpException"/> (bad input, the
    /// message names the file/field and the fix) and an unreadable/unwritable path or a full disk
    /// (<see cref="IOException"/>, <see cref="UnauthorizedAccessException"/>) are <see cref="BadInputExitCode"/>;
    /// anything else is a bug: <see cref="BugExitCode"/> with how to report it. Writes the message to <paramref name="error"/>.
    /// </summary>
    internal static int Fail(Exception e, TextWriter error)
    {
        switch (e)
        {
            case DpoSharpException:
                WriteError(error, e.Message);
                return BadInputExitCode;
            case IOException or UnauthorizedAccessException:
                // A path the user gave cannot be read or written (a folder where a file is expected, no permission,
                // disk full): the message names the path.
                WriteError(error, e.Message + " Check the path and its permissions, and the free disk space.");
                return BadInputExitCode;
        }

        // A bug, not bad input: one line, exit 1; the stack trace only on request.
        WriteError(error, $"internal error ({e.GetType().Name}): {e.Message}");
        if (Environment.GetEnvironmentVariable("DPOSHARP_DEBUG") is "1" or "true")
        {
            error.WriteLine(e.ToString());
        }
        else
        {
            error.WriteLine("This is a bug in dposharp: please report it to the DpoSharp maintainers with the command line, the output of " +
                "`dposharp info` and the stack trace (run again with DPOSHARP_DEBUG=1 to print it).");
        }

        return BugExitCode;
    }

    /// <summary>
    /// Checks an output file option before any work: not an existing folder, not one of the inputs, in an existing
    /// folder. Throws <see cref="DpoSharpException"/> naming <paramref name="option"/>.
    /// </summary>
    public static void CheckOutputFile(string option, string path, params string?[] inputs)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            throw new DpoSharpException($"{option} {path} is a folder; give a file name, e.g. {Path.Combine(path, "out.jsonl")}.");
        }

        foreach (var input in inputs)
        {
            if (input is not null && string.Equals(Path.GetFullPath(input), full, StringComparison.Ordinal))
            {
                throw new DpoSharpException($"{option} {path} is also the input {input}; writing it would replace the input. Choose another output file.");
            }
        }

        var dir = Path.GetDirectoryName(full);
        if (dir is not null && !Directory.Exists(dir))
        {
            throw new DpoSharpException($"{option} {path}: the output folder {dir} does not exist.");
        }
    }

    /// <summary>System.CommandLine names the expected .NET type ("as expected type 'System.Int32'"): say it in words.</summary>
    internal static string FriendlyTypeNames(string message) => message
        .Replace("expected type 'System.Nullable`1[System.Int32]'", "a whole number (within ±2147483647)", StringComparison.Ordinal)
        .Replace("expected type 'System.Int32'", "a whole number (within ±2147483647)", StringComparison.Ordinal)
        .Replace("expected type 'System.Int64'", "a whole number", StringComparison.Ordinal)
        .Replace("expected type 'System.Nullable`1[System.Double]'", "a number", StringComparison.Ordinal)
        .Replace("expected type 'System.Double'", "a number", StringComparison.Ordinal)
        .Replace("expected type 'System.Boolean'", "true or false", StringComparison.Ordinal);

    /// <summary>Writes "error: ..." to the error stream (plain text: it is often redirected).</summary>
    public static void WriteError(TextWriter err, string message) => err.WriteLine("error: " + message);

    /// <summary>Writes the notice of an interrupted command to the error stream of the command line being run (the
    /// console's when called outside <see cref="Run"/>); returns <see cref="InterruptSignals.ExitCode"/>.</summary>
    internal static int WriteInterrupted(IEnumerable<string> lines)
    {
        var err = Invocation?.Error ?? Console.Error;
        foreach (var line in lines)
        {
            err.WriteLine(line);
        }

        return InterruptSignals.ExitCode;
    }

    /// <summary>Console for rich output; falls back to plain text when redirected.</summary>
    public static IAnsiConsole CreateConsole(TextWriter output) => AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(output),
    });
}

/// <summary>The command line being run: its arguments (after <c>dposharp</c>) and error stream.</summary>
/// <param name="Arguments">The arguments as given.</param>
/// <param name="Error">Standard error.</param>
internal sealed record CliInvocation(IReadOnlyList<string> Arguments, TextWriter Error);
