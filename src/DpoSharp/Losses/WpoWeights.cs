using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// TRL's <c>use_weighting</c> (WPO, Zhou et al. 2024, eq. 2): each pair's loss is multiplied by
/// min(1, exp(w_chosen + w_rejected)), where w is the mean over completion tokens of
/// log p(token) − log Σ_v p(v)², i.e. the token's probability relative to the sampling-aligned distribution.
/// Computed without gradients, chunked over the sequence like <see cref="SequenceLogProbs"/> (or in the chunked
/// hidden-state pass, <see cref="CompletionStatistics.WpoTerms"/>); pass the result as
/// <see cref="PreferenceLossInput.PairWeights"/>.
/// </summary>
public static class WpoWeights
{
    /// <summary>
    /// The (P) pair weights for a batch of 2P rows (chosen rows first, then rejected), detached.
    /// </summary>
    /// <param name="logits">(2P, T, V) policy logits.</param>
    /// <param name="inputIds">(2P, T) token ids.</param>
    /// <param name="completionMask">(2P, T): 1 on completion tokens.</param>
    /// <param name="chunkSize">Positions per chunk.</param>
    public static Tensor Compute(Tensor logits, Tensor inputIds, Tensor completionMask, int chunkSize = SequenceLogProbs.DefaultChunkSize)
    {
        ArgumentNullException.ThrowIfNull(completionMask);
        using var noGrad = no_grad();
        var sums = TermSums(logits, inputIds, completionMask, chunkSize);            // (2P)
        return FromTermSums(sums, completionMask[.., 1..].to(ScalarType.Float32).sum(1));
    }

    /// <summary>
    /// Per-row sums (B) over completion tokens of log p(token) − log Σ_v p(v)², detached.
    /// </summary>
    /// <param name="logits">(B, T, V) logits.</param>
    /// <param name="inputIds">(B, T) token ids.</param>
    /// <param name="completionMask">(B, T): 1 on completion tokens.</param>
    /// <param name="chunkSize">Positions per chunk.</param>
    /// <param name="sequenceIds">(B, T) output sequence of each completion token, or null: one output per row.</param>
    /// <param name="sequenceCount">Output sequences with <paramref name="sequenceIds"/>.</param>
    public static Tensor TermSums(Tensor logits, Tensor inputIds, Tensor completionMask, int chunkSize = SequenceLogProbs.DefaultChunkSize, Tensor? sequenceIds = null, int sequenceCount = 0)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(completionMask);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        long rows = logits.shape[0], t = logits.shape[1];
        using var noGrad = no_grad();
        var labels = inputIds[.., 1..];                             // (B, T-1)
        var mask = completionMask[.., 1..].to(ScalarType.Float32);  // (B, T-1)
        var total = zeros(sequenceIds is null ? rows : sequenceCount, device: logits.device);
        for (long start = 0; start < t - 1; start += chunkSize)
        {
            long len = Math.Min(chunkSize, t - 1 - start);
            var chunk = logits.narrow(1, start, len).detach().to(ScalarType.Float32);   // (B, c, V)
            var lse = chunk.logsumexp(-1);                                               // (B, c)
            var lse2 = (chunk * 2).logsumexp(-1);                                        // (B, c)
            var picked = chunk.gather(-1, labels.narrow(1, start, len).unsqueeze(-1)).squeeze(-1);
            // log p(y) − log Σ p² = (picked − lse) − (lse2 − 2·lse)
            total += SequenceLogProbs.RowSums((picked + lse - lse2) * mask.narrow(1, start, len), sequenceIds?[.., 1..].narrow(1, start, len), sequenceCount);
        }

        return total.detach();
    }

    /// <summary>
    /// The (P) pair weights from per-row term sums (2P, <see cref="TermSums"/>) and completion token counts (2P),
    /// chosen rows first: min(1, exp(mean_chosen + mean_rejected)), detached.
    /// </summary>
    public static Tensor FromTermSums(Tensor termSums, Tensor tokenCounts)
    {
        ArgumentNullException.ThrowIfNull(termSums);
        ArgumentNullException.ThrowIfNull(tokenCounts);
        if (termSums.shape[0] % 2 != 0)
        {
            throw new ArgumentException($"expected chosen rows then rejected rows (an even count), got {termSums.shape[0]}");
        }

        using var noGrad = no_grad();
        var mean = termSums / tokenCounts.clamp_min(1);            // (2P)
        var halves = mean.chunk(2, 0);
        return (halves[0] + halves[1]).exp().clamp_max(1.0).detach();
    }
}
