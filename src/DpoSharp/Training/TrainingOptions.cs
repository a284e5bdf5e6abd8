using System.ComponentModel;
using System.Text.RegularExpressions;
using DpoSharp.Models.Lora;
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

    /// <summary>Seed of every random choice (data order, dropout, LoRA initialisation): same seed, same run.</summary>
    /// <value>Default 42.</value>
    [Description("random seed")]
    public int Seed { get; set; } = 42;

    /// <summary>
    /// Train LoRA adapters instead of every weight (TRL scripts' <c>use_peft</c>): the base model is frozen (no
    /// gradients, no optimizer state), adapters go on the <see cref="LoraTargetModules"/> with rank
    /// <see cref="LoraR"/>, and a DPO run's reference is the same base with the adapters disabled (no second copy of
    /// the weights). Checkpoints and the final model are PEFT adapters (<c>adapter_config.json</c> +
    /// <c>adapter_model.safetensors</c>). Implied by <see cref="Adapter"/>.
    /// </summary>
    /// <value>Default false.</value>
    [Description("train LoRA adapters on a frozen base model (PEFT files; the reference is the base with adapters off)")]
    [OptionAlias("lora")]
    public bool UsePeft { get; set; }

    /// <summary>A PEFT LoRA adapter folder to start from (its <c>adapter_config.json</c> sets rank, alpha and targets;
    /// the <c>lora_*</c> options are not used). Implies <see cref="UsePeft"/>.</summary>
    /// <value>Default null.</value>
    [Description("PEFT LoRA adapter folder to continue training (implies use_peft)")]
    public string? Adapter { get; set; }

    /// <summary>True when the run trains LoRA adapters (<see cref="UsePeft"/> or <see cref="Adapter"/>).</summary>
    public bool TrainsAdapters => UsePeft || Adapter is not null;

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

    /// <summary>The LoRA adapters of a <see cref="UsePeft"/> run (PEFT's <c>LoraConfig</c>).</summary>
    public LoraOptions Lora { get; } = new();

    /// <summary>Gradient checkpointing, chunked log-probs and the dtype of frozen weights.</summary>
    public MemoryOptions Memory { get; } = new();

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

    /// <inheritdoc cref="OptimizerOptions.MaxBadSteps"/>
    public int MaxBadSteps { get => Optimizer.MaxBadSteps; set => Optimizer.MaxBadSteps = value; }

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

    // ---------------------------------------------------------------- Lora

    /// <inheritdoc cref="LoraOptions.R"/>
    /// <value>Default 8.</value>
    [Description("LoRA rank r")]
    public int LoraR { get => Lora.R; set => Lora.R = value; }

    /// <inheritdoc cref="LoraOptions.LoraAlpha"/>
    public double LoraAlpha { get => Lora.LoraAlpha; set => Lora.LoraAlpha = value; }

    /// <inheritdoc cref="LoraOptions.LoraDropout"/>
    public double LoraDropout { get => Lora.LoraDropout; set => Lora.LoraDropout = value; }

    /// <inheritdoc cref="LoraOptions.TargetModules"/>
    /// <value>Default empty (PEFT's default for the architecture).</value>
    [Description("LoRA target modules, comma-separated (e.g. q_proj,v_proj), or all-linear (empty: PEFT's targets for the architecture)")]
    [OptionAlias("lora_target")]
    public List<string> LoraTargetModules { get => Lora.TargetModules; set => Lora.TargetModules = value; }

    // ---------------------------------------------------------------- Memory

    /// <inheritdoc cref="MemoryOptions.GradientCheckpointing"/>
    public bool? GradientCheckpointing { get => Memory.GradientCheckpointing; set => Memory.GradientCheckpointing = value; }

    /// <inheritdoc cref="MemoryOptions.LogitsChunkSize"/>
    public int LogitsChunkSize { get => Memory.LogitsChunkSize; set => Memory.LogitsChunkSize = value; }

    /// <inheritdoc cref="MemoryOptions.CompletionOnlyLogits"/>
    public bool CompletionOnlyLogits { get => Memory.CompletionOnlyLogits; set => Memory.CompletionOnlyLogits = value; }

    /// <inheritdoc cref="MemoryOptions.TorchDtype"/>
    public string TorchDtype { get => Memory.TorchDtype; set => Memory.TorchDtype = value; }

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
        Memory.Validate();
        if (TrainsAdapters)
        {
            Lora.Validate();
        }
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
        UsePeft = other.UsePeft;
        Adapter = other.Adapter;
        Optimizer = other.Optimizer.Clone();
        Schedule = other.Schedule.Clone();
        Batching = other.Batching.Clone();
        Checkpointing = other.Checkpointing.Clone();
        Logging = other.Logging.Clone();
        Lora = other.Lora.Clone();
        Memory = other.Memory.Clone();
    }

    [GeneratedRegex("^(auto|cpu|cuda(:[0-9]+)?)$")]
    private static partial Regex DeviceRegex();
}
