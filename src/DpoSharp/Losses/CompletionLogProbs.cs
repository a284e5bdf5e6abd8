using DpoSharp.Data;
using DpoSharp.Models;
using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>A forward pass over a batch and the completion log-probs read from it.</summary>
/// <param name="Logits">(B, T, V) model output.</param>
/// <param name="LogProbs">Per-row completion log-prob sums, token counts and mean logits.</param>
public sealed record CompletionForward(Tensor Logits, SequenceLogProbsResult LogProbs);

/// <summary>
/// The one path from a batch to sequence log-probs, used by training (DPO, SFT), the reference model and scoring:
/// one forward over every row of the batch (chosen and rejected rows together for preference batches), then
/// <see cref="SequenceLogProbs.Compute"/>. Gradients flow unless the caller disables them; the batch must be on the
/// model's device.
/// </summary>
public static class CompletionLogProbs
{
    /// <summary>Runs <paramref name="model"/> over <paramref name="batch"/> and sums each row's completion log-probs.</summary>
    public static CompletionForward Forward(ICausalLM model, SequenceBatch batch)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        var logits = model.Forward(batch.InputIds, batch.AttentionMask, batch.PositionIds);   // (B, T, V)
        return new CompletionForward(logits, SequenceLogProbs.Compute(logits, batch.InputIds, batch.CompletionMask));
    }
}
