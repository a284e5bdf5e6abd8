using DpoSharp.Data;
using static TorchSharp.torch;

namespace DpoSharp.Training.Engine;

/// <summary>Which data a batch comes from: objectives may treat them differently (e.g. precomputed reference
/// log-probs are looked up per split).</summary>
public enum DataSplit
{
    /// <summary>Training data.</summary>
    Train,

    /// <summary>Evaluation data.</summary>
    Eval,
}

/// <summary>How the training loop logs <c>loss</c> for an objective.</summary>
public enum TrainingLossMetric
{
    /// <summary>The objective's <c>loss</c> statistic averaged over its count (DPO: the mean pair loss, as TRL's
    /// DPOTrainer logs it).</summary>
    FromStatistics,

    /// <summary>The mean over the logging window's optimizer steps of each step's loss (transformers' Trainer, as
    /// TRL's SFTTrainer logs it); evaluation still uses the <c>loss</c> statistic.</summary>
    MeanOfSteps,
}

/// <summary>What an objective computes for one batch.</summary>
/// <param name="LossSum">Scalar tensor with autograd history: the loss summed over the batch's loss units (pairs,
/// completion tokens); the loop divides it by the step's units for exact gradient accumulation.</param>
/// <param name="Statistics">Named sums for the metrics (detached), with their counts.</param>
public sealed record ObjectiveOutput(Tensor LossSum, NamedStatistics Statistics);

/// <summary>
/// What an objective must keep across a checkpoint: scalars (saved in <c>trainer_state.json</c> as <c>loss_state</c>)
/// and groups of tensors (one safetensors file per group, named after it).
/// </summary>
/// <param name="Scalars">Named scalars (e.g. a running reward mean).</param>
/// <param name="TensorGroups">Tensor groups by name (e.g. <c>ref_logps-train</c> → chosen, rejected); CPU tensors,
/// owned by the objective.</param>
public sealed record ObjectiveState(IReadOnlyDictionary<string, double> Scalars, IReadOnlyDictionary<string, IReadOnlyDictionary<string, Tensor>> TensorGroups)
{
    /// <summary>No state.</summary>
    public static ObjectiveState Empty { get; } = new(new Dictionary<string, double>(), new Dictionary<string, IReadOnlyDictionary<string, Tensor>>());

    /// <summary>Where the state was read from (a checkpoint directory), for messages; null when not read from disk.</summary>
    public string? Source { get; init; }

    /// <summary>Disposes every tensor of <see cref="TensorGroups"/>.</summary>
    public void DisposeTensors()
    {
        foreach (var group in TensorGroups.Values)
        {
            foreach (var t in group.Values)
            {
                t.Dispose();
            }
        }
    }
}

/// <summary>
/// A training algorithm as the loop sees it: a collated batch in, a loss sum and named statistics out, plus whatever
/// state it must checkpoint. DPO and SFT are objectives; a new algorithm (KTO, ORPO, …) is a new objective, never a
/// new loop. The objective owns its models other than the policy (a reference model) and its loss.
/// </summary>
/// <typeparam name="TBatch">The batch type its data collates into.</typeparam>
public interface ITrainingObjective<in TBatch> : IDisposable
    where TBatch : SequenceBatch
{
    /// <summary>How the loop logs the training <c>loss</c>.</summary>
    TrainingLossMetric TrainingLossMetric { get; }

    /// <summary>Name of the examples-per-second throughput metric (<c>pairs_per_second</c>), or null for none.</summary>
    string? ExamplesPerSecondMetric { get; }

    /// <summary>
    /// Called once when training starts, before a checkpoint's weights are loaded into the policy (so a reference
    /// built here is the starting model). <paramref name="resumed"/> is the state the checkpoint holds, or null on a
    /// fresh run.
    /// </summary>
    void Begin(ObjectiveState? resumed);

    /// <summary>Computes the loss sum and statistics of <paramref name="batch"/> (on the policy's device). Gradients
    /// flow unless the caller disables them.</summary>
    ObjectiveOutput Compute(TBatch batch, DataSplit split);

    /// <summary>The state to checkpoint now.</summary>
    ObjectiveState SaveState();

    /// <summary>
    /// Called after every optimizer step, once the weights have changed and before that step's logging, evaluation and
    /// checkpoint (transformers' <c>on_step_end</c>), with the global step just completed (1 after the first step).
    /// Default: nothing.
    /// </summary>
    void OptimizerStepCompleted(int globalStep)
    {
    }
}
