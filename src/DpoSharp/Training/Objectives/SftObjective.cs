using DpoSharp.Data;
using DpoSharp.Losses;
using DpoSharp.Models;
using DpoSharp.Training.Engine;
using static TorchSharp.torch;

namespace DpoSharp.Training.Objectives;

/// <summary>
/// Supervised fine-tuning with a completion-only loss (TRL's <c>SFTTrainer</c> with <c>completion_only_loss</c>): the
/// summed −log p(token) over completion tokens, averaged by the loop over every completion token of the optimizer
/// step. Statistics: <c>loss</c> (per completion token; in training the loop logs the mean step loss, as
/// transformers' Trainer) and <c>mean_token_accuracy</c> (greedy next-token hits per completion token).
/// </summary>
/// <param name="model">The model being trained.</param>
public sealed class SftObjective(ICausalLM model) : ITrainingObjective<CompletionBatch>
{
    /// <summary>The count SFT statistics are averaged over.</summary>
    public const string Tokens = "tokens";

    /// <summary>The model being trained.</summary>
    public ICausalLM Model { get; } = model ?? throw new ArgumentNullException(nameof(model));

    /// <inheritdoc/>
    public TrainingLossMetric TrainingLossMetric => TrainingLossMetric.MeanOfSteps;

    /// <inheritdoc/>
    public string? ExamplesPerSecondMetric => null;

    /// <inheritdoc/>
    public void Begin(ObjectiveState? resumed)
    {
    }

    /// <inheritdoc/>
    public ObjectiveOutput Compute(CompletionBatch batch, DataSplit split)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var forward = CompletionLogProbs.Forward(Model, batch, CompletionStatistics.TokenHits);
        var nllSum = -forward.LogProbs.Sums.sum();
        var stats = new NamedStatistics();
        using (no_grad())
        {
            var correct = forward.TokenHits!.sum();
            stats.Add("loss", nllSum.detach().to(ScalarType.Float64), Tokens);
            stats.Add("mean_token_accuracy", correct.to(ScalarType.Float64), Tokens);
            stats.AddCount(Tokens, batch.CompletionTokenCount);
        }

        return new ObjectiveOutput(nllSum, stats);
    }

    /// <inheritdoc/>
    public ObjectiveState SaveState() => ObjectiveState.Empty;

    /// <inheritdoc/>
    public void Dispose()
    {
    }
}
