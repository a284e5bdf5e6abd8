using DpoSharp.Data;
using DpoSharp.Models;
using DpoSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>A forward pass over a batch and the completion log-probs read from it.</summary>
/// <param name="LogProbs">Per-row completion log-prob sums, token counts and mean logits.</param>
public sealed record CompletionForward(SequenceLogProbsResult LogProbs)
{
    /// <summary>(B, T, V) model output on the full-logits path; null when the log-probs came from hidden states in
    /// chunks (<see cref="CausalLMBase.LogitsChunkSize"/>).</summary>
    public Tensor? Logits { get; init; }

    /// <summary>(B) fp32, detached: greedy hits at completion tokens, when <see cref="CompletionStatistics.TokenHits"/> was asked.</summary>
    public Tensor? TokenHits { get; init; }

    /// <summary>(B) fp32, detached: per-row sums of WPO's token terms, when <see cref="CompletionStatistics.WpoTerms"/> was asked
    /// (<see cref="WpoWeights.FromTermSums"/>).</summary>
    public Tensor? WpoTermSums { get; init; }
}

/// <summary>
/// The one path from a batch to sequence log-probs, used by training (DPO, SFT), the reference model and scoring:
/// one forward over every row of the batch (chosen and rejected rows together for preference batches). For models
/// built by <see cref="ModelLoader"/> (<see cref="CausalLMBase"/> with <see cref="CausalLMBase.LogitsChunkSize"/>
/// &gt; 0, the default) the log-probs come from the final hidden states in chunks of positions
/// (<see cref="HiddenStateLogProbs"/>; only at completion positions with <see cref="CausalLMBase.CompletionOnlyLogits"/>),
/// so the (B, T, V) logits never exist in full; other models run <see cref="ICausalLM.Forward"/> then
/// <see cref="SequenceLogProbs.Compute"/>. Gradients flow unless the caller disables them; the batch must be on the
/// model's device.
/// </summary>
public static class CompletionLogProbs
{
    /// <summary>Runs <paramref name="model"/> over <paramref name="batch"/> and sums each row's completion log-probs.</summary>
    /// <param name="model">The model.</param>
    /// <param name="batch">The batch, on the model's device.</param>
    /// <param name="statistics">Extra per-row statistics to compute in the same pass.</param>
    /// <param name="tokenWeights">(B, T) fp32 or null: the weight of each completion token in the sums (LD-DPO:
    /// <see cref="LengthDesensitization.TokenWeights"/>); null: plain sums.</param>
    public static CompletionForward Forward(ICausalLM model, SequenceBatch batch, CompletionStatistics statistics = CompletionStatistics.None, Tensor? tokenWeights = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        // Rows holding several sequences (prefix sharing, padding-free): sums per output sequence instead of per row,
        // and a full mask from the segments unless the model attends per sequence (then it reads no mask).
        var seq = batch.SegmentIds;
        int count = batch.SequenceCount;
        Tensor Mask() => seq is null ? batch.AttentionMask : AttentionContext.SegmentMask(seq, batch.ParentSegmentIds ?? seq); // (B, T) or (B, 1, T, T)
        if (model is CausalLMBase lm && lm.LogitsChunkSize > 0)
        {
            var mask = lm.AttendsPerSequence(batch.SequenceGather, batch.InputIds) ? batch.AttentionMask : Mask();
            var hidden = lm.ForwardHidden(batch.InputIds, mask, batch.PositionIds, batch.SequenceGather, batch.SequenceScatter);   // (B, T, D)
            var r = HiddenStateLogProbs.Compute(hidden, lm.LmHead, lm.LmHeadParameters, batch.InputIds, batch.CompletionMask,
                lm.LogitsChunkSize, lm.CompletionOnlyLogits, statistics, seq, count, tokenWeights,
                lm.HasPlainLmHead ? new HiddenStateLogProbs.LinearHead(lm.LmHeadWeight, lm.LmHeadBias) : null);
            return new CompletionForward(r.LogProbs) { TokenHits = r.TokenHits, WpoTermSums = r.WpoTermSums };
        }

        var logits = model.Forward(batch.InputIds, Mask(), batch.PositionIds);   // (B, T, V)
        var lp = SequenceLogProbs.Compute(logits, batch.InputIds, batch.CompletionMask, sequenceIds: seq, sequenceCount: count, tokenWeights: tokenWeights);
        Tensor? hits = null, wpo = null;
        if (statistics.HasFlag(CompletionStatistics.TokenHits))
        {
            using var noGrad = no_grad();
            var pred = logits[.., ..^1].argmax(-1);                                              // (B, T-1)
            var hit = pred.eq(batch.InputIds[.., 1..]).logical_and(batch.CompletionMask[.., 1..].to(ScalarType.Bool));
            hits = SequenceLogProbs.RowSums(hit.to(ScalarType.Float32), seq?[.., 1..], count);   // (B) or (S)
        }

        if (statistics.HasFlag(CompletionStatistics.WpoTerms))
        {
            wpo = WpoWeights.TermSums(logits, batch.InputIds, batch.CompletionMask, sequenceIds: seq, sequenceCount: count); // (B) or (S)
        }

        return new CompletionForward(lp) { Logits = logits, TokenHits = hits, WpoTermSums = wpo };
    }
}
