using System.ComponentModel;
using System.Text.RegularExpressions;
using DpoSharp.Training.Engine;
using static DpoSharp.OptionChecks;

namespace DpoSharp.Training;

/// <summary>
/// The options every training run has: the model, device, seed, and one options object per concern
/// (<see cref="Optimizer"/>, <see cref="Schedule"/>, <see cref="Batching"/>, <see cref="Checkpointing"/>,
/// <see cref="Logging"/>). Every concern's option is also a flat property here (<see cref="LearningRate"/> is
/// <c>Optimizer.LearningRate</c>), named as transformers' <c>TrainingArguments</c>. Check with <see cref="Validate"/>.
/// </summary>
public abstract partial class TrainingOptions
{
    // ---------------------------------------------------------------- the run

    /// <summary>Policy model: a Hugging Face model directory (config.json + safetensors).</summary>
    /// <value>Default null (required by <c>dposharp train</c>).</value>
    [Description("model directory to train (HF layout)")]
    public string? Model { get; set; }

    /// <summary>Device: <c>auto</c> (CUDA when available, else CPU), <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    /// <value>Default <c>auto</c>.</value>
    [Description("auto / cpu / cuda / cuda:N")]
    public string Device { get; set; } = "auto";

    /// <summary>Disable dropout in the policy and the reference model.</summary>
    /// <value>Default true (TRL).</value>
    [Description("disable dropout in the model (and the reference model)")]
    public bool DisableDropout { get; set; } = true;

    /// <summary>Seed of every random choice (data order, dropout): same seed, same run.</summary>
    /// <value>Default 42.</value>
    [Description("random seed")]
    public int Seed { get; set; } = 42;

    // ---------------------------------------------------------------- concerns

    /// <summary>AdamW and gradient clipping.</summary>
    public OptimizerOptions Optimizer { get; } = new();

    /// <summary>Run length and learning-rate schedule.</summary>
    public ScheduleOptions Schedule { get; } = new();

    /// <summary>Batch sizes and gradient accumulation.</summary>
    public BatchOptions Batching { get; } = new();

    /// <summary>Output directory, checkpoints and resuming.</summary>
    public CheckpointOptions Checkpointing { get; } = new();

    /// <summary>Logging, evaluation and metric sinks.</summary>
    public LoggingOptions Logging { get; } = new();

    // ---------------------------------------------------------------- Optimizer

    /// <inheritdoc cref="OptimizerOptions.LearningRate"/>
    public double LearningRate { get => Optimizer.LearningRate; set => Optimizer.LearningRate = value; }

    /// <inheritdoc cref="OptimizerOptions.WeightDecay"/>
    public double WeightDecay { get => Optimizer.WeightDecay; set => Optimizer.WeightDecay = value; }

    /// <inheritdoc cref="OptimizerOptions.AdamBeta1"/>
    public double AdamBeta1 { get => Optimizer.AdamBeta1; set => Optimizer.AdamBeta1 = value; }

    /// <inheritdoc cref="OptimizerOptions.AdamBeta2"/>
    public double AdamBeta2 { get => Optimizer.AdamBeta2; set => Optimizer.AdamBeta2 = value; }

    /// <inheritdoc cref="OptimizerOptions.AdamEpsilon"/>
    public double AdamEpsilon { get => Optimizer.AdamEpsilon; set => Optimizer.AdamEpsilon = value; }

    /// <inheritdoc cref="OptimizerOptions.MaxGradNorm"/>
    public double MaxGradNorm { get => Optimizer.MaxGradNorm; set => Optimizer.MaxGradNorm = value; }

    // ---------------------------------------------------------------- Schedule

    /// <inheritdoc cref="ScheduleOptions.NumTrainEpochs"/>
    public double NumTrainEpochs { get => Schedule.NumTrainEpochs; set => Schedule.NumTrainEpochs = value; }

    /// <inheritdoc cref="ScheduleOptions.MaxSteps"/>
    public int MaxSteps { get => Schedule.MaxSteps; set => Schedule.MaxSteps = value; }

    /// <inheritdoc cref="ScheduleOptions.LrSchedulerType"/>
    public LrSchedulerType LrSchedulerType { get => Schedule.LrSchedulerType; set => Schedule.LrSchedulerType = value; }

    /// <inheritdoc cref="ScheduleOptions.WarmupRatio"/>
    public double WarmupRatio { get => Schedule.WarmupRatio; set => Schedule.WarmupRatio = value; }

    /// <inheritdoc cref="ScheduleOptions.WarmupSteps"/>
    public int WarmupSteps { get => Schedule.WarmupSteps; set => Schedule.WarmupSteps = value; }

    // ---------------------------------------------------------------- Batching

    /// <inheritdoc cref="BatchOptions.PerDeviceTrainBatchSize"/>
    public int PerDeviceTrainBatchSize { get => Batching.PerDeviceTrainBatchSize; set => Batching.PerDeviceTrainBatchSize = value; }

    /// <inheritdoc cref="BatchOptions.PerDeviceEvalBatchSize"/>
    public int PerDeviceEvalBatchSize { get => Batching.PerDeviceEvalBatchSize; set => Batching.PerDeviceEvalBatchSize = value; }

    /// <inheritdoc cref="BatchOptions.GradientAccumulationSteps"/>
    public int GradientAccumulationSteps { get => Batching.GradientAccumulationSteps; set => Batching.GradientAccumulationSteps = value; }

    /// <inheritdoc cref="BatchOptions.GroupByLength"/>
    public bool GroupByLength { get => Batching.GroupByLength; set => Batching.GroupByLength = value; }

    // ---------------------------------------------------------------- Checkpointing

    /// <inheritdoc cref="CheckpointOptions.OutputDir"/>
    public string OutputDir { get => Checkpointing.OutputDir; set => Checkpointing.OutputDir = value; }

    /// <inheritdoc cref="CheckpointOptions.SaveSteps"/>
    public int SaveSteps { get => Checkpointing.SaveSteps; set => Checkpointing.SaveSteps = value; }

    /// <inheritdoc cref="CheckpointOptions.SaveTotalLimit"/>
    public int? SaveTotalLimit { get => Checkpointing.SaveTotalLimit; set => Checkpointing.SaveTotalLimit = value; }

    /// <inheritdoc cref="CheckpointOptions.ResumeFromCheckpoint"/>
    public string? ResumeFromCheckpoint { get => Checkpointing.ResumeFromCheckpoint; set => Checkpointing.ResumeFromCheckpoint = value; }

    /// <inheritdoc cref="CheckpointOptions.Resume"/>
    public bool Resume { get => Checkpointing.Resume; set => Checkpointing.Resume = value; }

    /// <inheritdoc cref="CheckpointOptions.OverwriteOutputDir"/>
    public bool OverwriteOutputDir { get => Checkpointing.OverwriteOutputDir; set => Checkpointing.OverwriteOutputDir = value; }

    // ---------------------------------------------------------------- Logging

    /// <inheritdoc cref="LoggingOptions.LoggingSteps"/>
    public int LoggingSteps { get => Logging.LoggingSteps; set => Logging.LoggingSteps = value; }

    /// <inheritdoc cref="LoggingOptions.EvalStrategy"/>
    public EvalStrategy EvalStrategy { get => Logging.EvalStrategy; set => Logging.EvalStrategy = value; }

    /// <inheritdoc cref="LoggingOptions.EvalSteps"/>
    public int? EvalSteps { get => Logging.EvalSteps; set => Logging.EvalSteps = value; }

    /// <inheritdoc cref="LoggingOptions.ReportTo"/>
    public List<ReportTarget> ReportTo { get => Logging.ReportTo; set => Logging.ReportTo = value; }

    /// <inheritdoc cref="LoggingOptions.EffectiveEvalSteps"/>
    public int EffectiveEvalSteps => Logging.EffectiveEvalSteps;

    /// <inheritdoc cref="LoggingOptions.EffectiveReportTo"/>
    public IReadOnlyList<ReportTarget> EffectiveReportTo => Logging.EffectiveReportTo;

    // ---------------------------------------------------------------- validation and copies

    /// <summary>
    /// Checks every option; throws <see cref="DpoSharpException"/> whose message names the option, the bad value and
    /// what is accepted. Call after loading and applying overrides, before any work. Derived classes check their own
    /// concerns, then call this.
    /// </summary>
    public virtual void Validate()
    {
        Batching.Validate();
        Schedule.Validate();
        Optimizer.Validate();
        Require(Seed >= 0, $"seed must be 0 or more (got {Seed}).");
        Require(DeviceRegex().IsMatch(Device), $"device '{Device}' is not understood; use auto, cpu, cuda or cuda:N.");
        Checkpointing.Validate();
        Logging.Validate();
    }

    /// <summary>Options with their defaults.</summary>
    protected TrainingOptions()
    {
    }

    /// <summary>A deep copy of <paramref name="other"/>: the same values, its own concern objects.</summary>
    protected TrainingOptions(TrainingOptions other)
    {
        ArgumentNullException.ThrowIfNull(other);
        Model = other.Model;
        Device = other.Device;
        DisableDropout = other.DisableDropout;
        Seed = other.Seed;
        Optimizer = other.Optimizer.Clone();
        Schedule = other.Schedule.Clone();
        Batching = other.Batching.Clone();
        Checkpointing = other.Checkpointing.Clone();
        Logging = other.Logging.Clone();
    }

    [GeneratedRegex("^(auto|cpu|cuda(:[0-9]+)?)$")]
    private static partial Regex DeviceRegex();
}
