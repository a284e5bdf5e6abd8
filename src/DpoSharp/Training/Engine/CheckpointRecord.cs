using DpoSharp.Models;
using TorchSharp.Modules;

namespace DpoSharp.Training.Engine;

/// <summary>The learning-rate schedule a checkpoint records (informational: the schedule is recomputed on resume).</summary>
/// <param name="Type">Scheduler type.</param>
/// <param name="BaseLearningRate">Peak learning rate.</param>
public sealed record ScheduleRecord(string Type, double BaseLearningRate);

/// <summary>Everything one checkpoint holds, as plain data: what <see cref="Checkpointer.Save"/> writes.</summary>
/// <param name="Model">The model whose weights are saved (Hugging Face layout).</param>
/// <param name="TokenizerFilesSource">A folder whose tokenizer files are copied next to the weights, or null.</param>
/// <param name="Optimizer">AdamW state per parameter, in optimizer-state order, with the parameters' names.</param>
/// <param name="State">Step, epoch, data position, objective scalars and log history.</param>
/// <param name="Schedule">The learning-rate schedule.</param>
/// <param name="Objective">The objective's state (its tensor groups become files).</param>
public sealed record CheckpointRecord(
    ICausalLM Model,
    string? TokenizerFilesSource,
    IReadOnlyList<(string Name, AdamW.State State)> Optimizer,
    TrainerState State,
    ScheduleRecord Schedule,
    ObjectiveState Objective);

/// <summary>What a checkpoint's data position refers to: a resumed run must have the same.</summary>
/// <param name="Seed">Seed of the data order.</param>
/// <param name="PerDeviceTrainBatchSize">Examples per micro-batch.</param>
/// <param name="GradientAccumulationSteps">Micro-batches per optimizer step.</param>
/// <param name="NumTrainExamples">Training examples (pairs, rows).</param>
/// <param name="WorldSize">Data-parallel processes.</param>
public sealed record DataLayout(int Seed, int PerDeviceTrainBatchSize, int GradientAccumulationSteps, int NumTrainExamples, int WorldSize);

/// <summary>A checkpoint folder that resuming passed over.</summary>
/// <param name="Directory">The folder.</param>
/// <param name="Reason">Why it was not used.</param>
public sealed record SkippedCheckpoint(string Directory, string Reason);

/// <summary>What a resumed run continues from.</summary>
/// <param name="Checkpoint">The checkpoint directory.</param>
/// <param name="Step">Its optimizer step.</param>
/// <param name="Skipped">Newer checkpoint folders passed over, and why.</param>
public sealed record ResumeInfo(string Checkpoint, int Step, IReadOnlyList<SkippedCheckpoint> Skipped)
{
    /// <summary>A warning about the checkpoint (one without a manifest, whose files could not be verified), or null.</summary>
    public string? Warning { get; init; }
}
