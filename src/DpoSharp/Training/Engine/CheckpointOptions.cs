using System.ComponentModel;
using static DpoSharp.OptionChecks;

namespace DpoSharp.Training.Engine;

/// <summary>
/// Where a training run writes and how it saves and resumes (transformers' <c>TrainingArguments</c> names). Part of
/// <see cref="TrainingOptions.Checkpointing"/>; checked by <see cref="TrainingOptions.Validate"/>.
/// </summary>
public sealed class CheckpointOptions
{
    /// <summary>Where checkpoints (<c>checkpoint-&lt;step&gt;/</c>), metrics and the final model go.</summary>
    /// <value>Default <c>trainer_output</c> (transformers).</value>
    [Description("output directory: final model, checkpoints, metrics")]
    public string OutputDir { get; set; } = "trainer_output";

    /// <summary>Save a checkpoint every N optimizer steps.</summary>
    /// <value>Default 500.</value>
    [Description("save a checkpoint every N steps")]
    public int SaveSteps { get; set; } = 500;

    /// <summary>Keep at most this many checkpoints (oldest deleted); null: keep all.</summary>
    /// <value>Default null.</value>
    [Description("keep at most N checkpoints")]
    public int? SaveTotalLimit { get; set; }

    /// <summary>Resume from this checkpoint directory.</summary>
    /// <value>Default null.</value>
    [Description("resume from this checkpoint directory")]
    public string? ResumeFromCheckpoint { get; set; }

    /// <summary>Resume from the newest <c>checkpoint-*</c> in <see cref="OutputDir"/>.</summary>
    /// <value>Default false.</value>
    [Description("resume from the newest checkpoint in output_dir")]
    public bool Resume { get; set; }

    /// <summary>
    /// Allow a fresh run (no resume) into an <see cref="OutputDir"/> that holds an earlier run's model or
    /// checkpoints: the old <c>checkpoint-*</c> folders are deleted first, the model is replaced at the end.
    /// Without it the CLI refuses such a run (transformers' <c>overwrite_output_dir</c>).
    /// </summary>
    /// <value>Default false.</value>
    [Description("allow a fresh run into an output_dir holding an earlier run (its checkpoints are deleted)")]
    public bool OverwriteOutputDir { get; set; }

    /// <summary>A copy.</summary>
    public CheckpointOptions Clone() => (CheckpointOptions)MemberwiseClone();

    /// <summary>Throws <see cref="DpoSharpException"/> naming the first bad option.</summary>
    internal void Validate()
    {
        Require(!string.IsNullOrWhiteSpace(OutputDir), "output_dir must name a directory.");
        Require(SaveSteps >= 1, $"save_steps must be at least 1 (got {SaveSteps}).");
        Require(SaveTotalLimit is null or >= 1, $"save_total_limit must be at least 1 (got {SaveTotalLimit}).");
        Require(ResumeFromCheckpoint is null || !string.IsNullOrWhiteSpace(ResumeFromCheckpoint), "resume_from_checkpoint must name a checkpoint directory.");
    }
}
