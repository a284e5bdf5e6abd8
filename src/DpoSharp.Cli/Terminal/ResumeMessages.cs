using System.Text;
using System.Text.RegularExpressions;
using DpoSharp.Training.Engine;

namespace DpoSharp.Cli.Terminal;

/// <summary>What <c>train</c> and <c>sft</c> say when a run is interrupted (how to continue it) and when it resumes
/// (from which checkpoint, and why newer ones were passed over).</summary>
public static partial class ResumeMessages
{
    /// <summary>
    /// The lines printed when a run stopped on Ctrl-C / SIGTERM: the checkpoint written, then
    /// <c>interrupted at step N; continue with: dposharp train … --resume</c>.
    /// </summary>
    /// <param name="e">The interruption (its step and checkpoint).</param>
    /// <param name="arguments">The command line that was run (after <c>dposharp</c>), or null when unknown.</param>
    /// <param name="command">The command name for an unknown command line (<c>train</c>, <c>sft</c>).</param>
    /// <param name="resumeFromCheckpoint">The run's <c>resume_from_checkpoint</c> (from the file or a flag), or null.</param>
    public static IReadOnlyList<string> Interrupted(TrainingInterruptedException e, IReadOnlyList<string>? arguments, string command, string? resumeFromCheckpoint)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.Checkpoint is null && e.Step == 0)
        {
            return ["interrupted before the first optimizer step; nothing was saved."];
        }

        var lines = new List<string>();
        if (e.Checkpoint is not null)
        {
            lines.Add($"saved {Path.GetFullPath(e.Checkpoint)}");
        }

        string next = arguments is null
            ? $"dposharp {command} … --resume"
            : ContinueCommand(arguments, resumeFromCheckpoint is null ? null : e.Checkpoint);
        lines.Add($"interrupted at step {e.Step}; continue with: {next}");
        return lines;
    }

    /// <summary>
    /// The command that continues an interrupted run: <paramref name="arguments"/> without their resume options
    /// (<c>--resume</c>, <c>--resume-from-checkpoint</c> and their values), then <c>--resume</c> once — or, when the
    /// run named a checkpoint to resume from (which would win over <c>--resume</c>, also from a config file),
    /// <c>--resume-from-checkpoint <paramref name="checkpoint"/></c>. Quoted for a POSIX shell.
    /// </summary>
    /// <param name="arguments">The command line that was run (after <c>dposharp</c>).</param>
    /// <param name="checkpoint">The checkpoint to name, or null for <c>--resume</c>.</param>
    public static string ContinueCommand(IReadOnlyList<string> arguments, string? checkpoint = null)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var kept = new List<string>();
        for (int i = 0; i < arguments.Count; i++)
        {
            var m = ResumeOption().Match(arguments[i]);
            if (!m.Success)
            {
                kept.Add(arguments[i]);
                continue;
            }

            bool inlineValue = m.Groups["value"].Success;
            bool isPath = m.Groups["path"].Success;
            if (!inlineValue && i + 1 < arguments.Count)
            {
                // `--resume-from-checkpoint DIR` takes the next token; `--resume true|false` may.
                var next = arguments[i + 1];
                if (isPath ? !next.StartsWith("--", StringComparison.Ordinal) : next is "true" or "false" or "True" or "False")
                {
                    i++;
                }
            }
        }

        var sb = new StringBuilder("dposharp");
        foreach (var a in kept)
        {
            sb.Append(' ').Append(Quote(a));
        }

        sb.Append(checkpoint is null ? " --resume" : " --resume-from-checkpoint " + Quote(checkpoint));
        return sb.ToString();
    }

    /// <summary><paramref name="arg"/> as a POSIX shell word: unchanged when it needs no quoting, else in single quotes.</summary>
    public static string Quote(string arg)
    {
        ArgumentNullException.ThrowIfNull(arg);
        if (arg.Length > 0 && SafeWord().IsMatch(arg))
        {
            return arg;
        }

        return "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
    }

    /// <summary>
    /// <c>resuming from checkpoint-6 (step 6); skipped checkpoint-8.tmp: incomplete: …</c>. Checkpoints in
    /// <paramref name="outputDir"/> are named by folder, others by path.
    /// </summary>
    /// <param name="info">What the run resumed from.</param>
    /// <param name="outputDir">The run's output_dir.</param>
    public static string Resuming(ResumeInfo info, string outputDir)
    {
        ArgumentNullException.ThrowIfNull(info);
        var sb = new StringBuilder($"resuming from {Name(info.Checkpoint, outputDir)} (step {info.Step})");
        foreach (var s in info.Skipped)
        {
            sb.Append($"; skipped {Name(s.Directory, outputDir)}: {s.Reason}");
        }

        if (info.Warning is { } warning)
        {
            sb.Append("; warning: ").Append(warning);
        }

        return sb.ToString();
    }

    private static string Name(string dir, string outputDir)
    {
        var full = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar);
        var parent = Path.GetDirectoryName(full);
        return parent is not null && string.Equals(parent, Path.GetFullPath(outputDir).TrimEnd(Path.DirectorySeparatorChar), StringComparison.Ordinal)
            ? Path.GetFileName(full)
            : dir;
    }

    // --resume, --resume=true, --resume:false, --resume-from-checkpoint[=DIR] (and snake_case spellings).
    [GeneratedRegex(@"^--resume(?:(?<path>[-_]from[-_]checkpoint))?(?:[=:](?<value>.*))?$", RegexOptions.Singleline)]
    private static partial Regex ResumeOption();

    [GeneratedRegex(@"^[A-Za-z0-9_@%+=:,./-]+$")]
    private static partial Regex SafeWord();
}
