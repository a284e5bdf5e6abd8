using System.ComponentModel;
using static DpoSharp.OptionChecks;

namespace DpoSharp.Training.Engine;

/// <summary>
/// How long a training run lasts and how its learning rate moves (transformers' <c>TrainingArguments</c> names). Part
/// of <see cref="TrainingOptions.Schedule"/>; checked by <see cref="TrainingOptions.Validate"/>.
/// </summary>
public sealed class ScheduleOptions
{
    /// <summary>Epochs over the training data (fractions allowed); ignored when <see cref="MaxSteps"/> &gt; 0.</summary>
    /// <value>Default 3.</value>
    [Description("epochs (ignored when max_steps > 0)")]
    public double NumTrainEpochs { get; set; } = 3;

    /// <summary>Optimizer steps to run; −1: derived from <see cref="NumTrainEpochs"/>.</summary>
    /// <value>Default −1.</value>
    [Description("optimizer steps (-1: from num_train_epochs)")]
    public int MaxSteps { get; set; } = -1;

    /// <summary>Learning-rate schedule: <c>constant</c>, <c>constant_with_warmup</c>, <c>linear</c> or <c>cosine</c>.</summary>
    /// <value>Default <see cref="LrSchedulerType.Linear"/> (<c>linear</c>, transformers).</value>
    [Description("constant / constant_with_warmup / linear / cosine")]
    public LrSchedulerType LrSchedulerType { get; set; } = LrSchedulerType.Linear;

    /// <summary>Warm-up as a fraction of all steps (used when <see cref="WarmupSteps"/> is 0).</summary>
    /// <value>Default 0.</value>
    [Description("warm-up fraction of total steps (used when warmup_steps is 0)")]
    public double WarmupRatio { get; set; }

    /// <summary>Warm-up steps; overrides <see cref="WarmupRatio"/> when positive.</summary>
    /// <value>Default 0.</value>
    [Description("warm-up steps (overrides warmup_ratio)")]
    public int WarmupSteps { get; set; }

    /// <summary>A copy.</summary>
    public ScheduleOptions Clone() => (ScheduleOptions)MemberwiseClone();

    /// <summary>Throws <see cref="DpoSharpException"/> naming the first bad option.</summary>
    internal void Validate()
    {
        Require(Finite(NumTrainEpochs) && NumTrainEpochs >= 0, $"num_train_epochs must be a non-negative number (got {NumTrainEpochs}).");
        Require(MaxSteps == -1 || MaxSteps >= 1, $"max_steps must be -1 (use num_train_epochs) or at least 1 (got {MaxSteps}).");
        Require(MaxSteps > 0 || NumTrainEpochs > 0, "num_train_epochs is 0 and max_steps is not set: nothing to train; set one of them.");
        OptionValues.RequireDefined(LrSchedulerType, "lr_scheduler_type");
        Require(Finite(WarmupRatio) && WarmupRatio is >= 0 and <= 1, $"warmup_ratio must be between 0 and 1 (got {WarmupRatio}).");
        Require(WarmupSteps >= 0, $"warmup_steps must be 0 or more (got {WarmupSteps}).");
    }
}
