using System.ComponentModel;
using static DpoSharp.OptionChecks;

namespace DpoSharp.Training.Engine;

/// <summary>
/// Batch sizes and accumulation of a training run (transformers' <c>TrainingArguments</c> names). Part of
/// <see cref="TrainingOptions.Batching"/>; checked by <see cref="TrainingOptions.Validate"/>.
/// </summary>
public sealed class BatchOptions
{
    /// <summary>Examples per micro-batch (DPO: preference pairs; SFT: rows).</summary>
    /// <value>Default 8 (transformers).</value>
    [Description("examples (DPO: pairs) per micro-batch")]
    public int PerDeviceTrainBatchSize { get; set; } = 8;

    /// <summary>Examples per evaluation batch.</summary>
    /// <value>Default 8.</value>
    [Description("examples (DPO: pairs) per evaluation batch")]
    public int PerDeviceEvalBatchSize { get; set; } = 8;

    /// <summary>Micro-batches accumulated per optimizer step.</summary>
    /// <value>Default 1.</value>
    [Description("micro-batches per optimizer step")]
    public int GradientAccumulationSteps { get; set; } = 1;

    /// <summary>Group rows of similar length into batches (less padding).</summary>
    /// <value>Default false.</value>
    [Description("batch rows of similar length together")]
    public bool GroupByLength { get; set; }

    /// <summary>A copy.</summary>
    public BatchOptions Clone() => (BatchOptions)MemberwiseClone();

    /// <summary>Throws <see cref="DpoSharpException"/> naming the first bad option.</summary>
    internal void Validate()
    {
        Require(PerDeviceTrainBatchSize >= 1, $"per_device_train_batch_size must be at least 1 (got {PerDeviceTrainBatchSize}).");
        Require(PerDeviceEvalBatchSize >= 1, $"per_device_eval_batch_size must be at least 1 (got {PerDeviceEvalBatchSize}).");
        Require(GradientAccumulationSteps >= 1, $"gradient_accumulation_steps must be at least 1 (got {GradientAccumulationSteps}).");
    }
}
