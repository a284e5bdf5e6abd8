using System.ComponentModel;
using static DpoSharp.OptionChecks;

namespace DpoSharp.Training.Engine;

/// <summary>
/// When a training run logs and evaluates, and where metrics go (transformers' <c>TrainingArguments</c> names). Part
/// of <see cref="TrainingOptions.Logging"/>; checked by <see cref="TrainingOptions.Validate"/>.
/// </summary>
public sealed class LoggingOptions
{
    /// <summary>Log metrics every N optimizer steps.</summary>
    /// <value>Default 10 (TRL).</value>
    [Description("log metrics every N steps")]
    public int LoggingSteps { get; set; } = 10;

    /// <summary>When to evaluate: <c>no</c>, <c>steps</c> (every <see cref="EvalSteps"/>) or <c>epoch</c>.</summary>
    /// <value>Default <see cref="EvalStrategy.No"/> (<c>no</c>).</value>
    [Description("no / steps / epoch")]
    public EvalStrategy EvalStrategy { get; set; } = EvalStrategy.No;

    /// <summary>Evaluate every N steps when <see cref="EvalStrategy"/> is <c>steps</c>; null: <see cref="LoggingSteps"/>.</summary>
    /// <value>Default null.</value>
    [Description("evaluate every N steps (null: logging_steps)")]
    public int? EvalSteps { get; set; }

    /// <summary>Metric sinks: tensorboard, png (and jsonl, console, which are always on unless <c>none</c>; see
    /// <see cref="EffectiveReportTo"/>); <c>all</c> or <c>none</c>.</summary>
    /// <value>Default <c>[all]</c> (<see cref="ReportTarget.All"/>).</value>
    [Description("metric sinks: jsonl, tensorboard, png, console, all, none")]
    public List<ReportTarget> ReportTo { get; set; } = [ReportTarget.All];

    /// <summary>Evaluation steps derived from <see cref="EvalSteps"/> / <see cref="LoggingSteps"/>.</summary>
    public int EffectiveEvalSteps => EvalSteps ?? LoggingSteps;

    /// <summary>
    /// The sinks <see cref="ReportTo"/> selects. As in TRL, <c>report_to</c> picks the integrations (<c>tensorboard</c>,
    /// <c>png</c>, …); <c>jsonl</c> (<c>metrics.jsonl</c>, the run's own log like transformers'
    /// <c>trainer_state.json</c>) and <c>console</c> (the command line's progress) are always on, so
    /// <c>report_to: tensorboard</c> keeps them. <c>none</c> (or an empty list) turns everything off; <c>all</c> is
    /// every sink.
    /// </summary>
    public IReadOnlyList<ReportTarget> EffectiveReportTo
    {
        get
        {
            if (ReportTo.Count == 0 || ReportTo.Contains(ReportTarget.None))
            {
                return [];
            }

            return ReportTo.Contains(ReportTarget.All)
                ? [ReportTarget.Jsonl, ReportTarget.Tensorboard, ReportTarget.Png, ReportTarget.Console]
                : [.. ReportTo.Prepend(ReportTarget.Jsonl).Append(ReportTarget.Console).Distinct()];
        }
    }

    /// <summary>A deep copy.</summary>
    public LoggingOptions Clone()
    {
        var c = (LoggingOptions)MemberwiseClone();
        c.ReportTo = [.. ReportTo];
        return c;
    }

    /// <summary>Throws <see cref="DpoSharpException"/> naming the first bad option.</summary>
    internal void Validate()
    {
        Require(LoggingSteps >= 1, $"logging_steps must be at least 1 (got {LoggingSteps}).");
        OptionValues.RequireDefined(EvalStrategy, "eval_strategy");
        Require(EvalSteps is null or >= 1, $"eval_steps must be at least 1 (got {EvalSteps}).");
        foreach (var r in ReportTo)
        {
            OptionValues.RequireDefined(r, "report_to");
        }

        Require(!(ReportTo.Contains(ReportTarget.None) && ReportTo.Count > 1), "report_to 'none' cannot be combined with other sinks.");
    }
}
