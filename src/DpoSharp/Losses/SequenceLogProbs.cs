using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>Per-sequence completion log-probs: results of <see cref="SequenceLogProbs.Compute"/>.</summary>
/// <param name="Sums">(B) fp32: sum over completion tokens of log p(token | tokens before it).</param>
/// <param name="TokenCounts">(B) fp32: number of completion tokens per row.</param>
/// <param name="MeanLogits">(B) fp32, detached: mean over completion positions of the mean logit over the vocabulary
/// (TRL's <c>logits/chosen|rejected</c>).</param>
public sealed record SequenceLogProbsResult(Tensor Sums, Tensor TokenCounts, Tensor MeanLogits);

/// <summary>
/// Sums completion-token log-probs with labels shifted by one: the token at position t is scored by the logits
/// at t-1, so the first completion token is predicted from the last prompt token. Computed in fp32 as
/// <c>logit[label] - logsumexp(logits)</c>, chunked over the sequence, so no (B, T, V) log-softmax copy is made.
/// </summary>
public static class SequenceLogProbs
{
    /// <summary>Sequence positions per chunk. Bounds the transient fp32 copy at (B, ChunkSize, V).</summary>
    public const int DefaultChunkSize = 128;

    /// <summary>
    /// Computes per-row completion log-prob sums.
    /// </summary>
    /// <param name="logits">(B, T, V) model output, any float dtype.</param>
    /// <param name="inputIds">(B, T) int64 token ids.</param>
    /// <param name="completionMask">(B, T): 1 where the token at that position is a completion token.</param>
    /// <param name="chunkSize">Positions per chunk.</param>
    /// <param name="sequenceIds">(B, T) int64: the output sequence of each completion token (rows holding several
    /// sequences), or null: one output per row.</param>
    /// <param name="sequenceCount">Output sequences with <paramref name="sequenceIds"/>.</param>
    /// <param name="tokenWeights">(B, T) fp32 or null: the weight of the token at each position in <see cref="SequenceLogProbsResult.Sums"/>
    /// (only completion positions count; e.g. <see cref="LengthDesensitization.TokenWeights"/>); null: all 1. Token
    /// counts and mean logits are unweighted.</param>
    public static SequenceLogProbsResult Compute(Tensor logits, Tensor inputIds, Tensor completionMask, int chunkSize = DefaultChunkSize, Tensor? sequenceIds = null, int sequenceCount = 0, Tensor? tokenWeights = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        long b = logits.shape[0], t = logits.shape[1];
        if (inputIds.shape[0] != b || inputIds.shape[1] != t || completionMask.shape[0] != b || completionMask.shape[1] != t)
        {
            throw new ArgumentException($"shape mismatch: logits {string.Join('x', logits.shape)}, input_ids {string.Join('x', inputIds.shape)}, completion_mask {string.Join('x', completionMask.shape)}");
        }

        LengthDesensitization.CheckShape(tokenWeights, completionMask);

        // Position t-1 predicts token t: drop the last logit row and the first label.
        var labels = inputIds[.., 1..];                            // (B, T-1)
        var mask = completionMask[.., 1..].to(ScalarType.Float32); // (B, T-1)
        var sumMask = tokenWeights is null ? mask : mask * tokenWeights[.., 1..].to(ScalarType.Float32); // (B, T-1)
        var sums = new List<Tensor>();
        var logitSums = new List<Tensor>();
        for (long start = 0; start < t - 1; start += chunkSize)
        {
            long end = Math.Min(start + chunkSize, t - 1);
            var chunk = logits.narrow(1, start, end - start).to(ScalarType.Float32);        // (B, c, V)
            var lse = chunk.logsumexp(-1);                                    // (B, c)
            var picked = chunk.gather(-1, labels.narrow(1, start, end - start).unsqueeze(-1)).squeeze(-1); // (B, c)
            var m = mask.narrow(1, start, end - start);
            var seq = sequenceIds?[.., 1..].narrow(1, start, end - start);
            sums.Add(RowSums((picked - lse) * sumMask.narrow(1, start, end - start), seq, sequenceCount)); // (B) or (S)
            using (no_grad())
            {
                logitSums.Add(RowSums(chunk.mean([-1]) * m, seq, sequenceCount)); // (B) or (S)
            }
        }

        long outputs = sequenceIds is null ? b : sequenceCount;
        var counts = RowSums(mask, sequenceIds?[.., 1..], sequenceCount);     // (B) or (S)
        var total = sums.Count == 0 ? zeros(outputs, device: logits.device) : stack(sums, 0).sum(0L);                    // 0L: a literal 0 would bind to sum(ScalarType?)
        var meanLogits = logitSums.Count == 0
            ? zeros(outputs, device: logits.device)
            : stack(logitSums, 0).sum(0L).detach() / counts.clamp_min(1);
        return new SequenceLogProbsResult(total, counts, meanLogits);
    }

    /// <summary>
    /// Sums masked per-token values (B, c) per row (B), or with <paramref name="sequenceIds"/> (B, c) per output
    /// sequence (<paramref name="sequenceCount"/>); entries whose value is masked to 0 may carry any sequence id.
    /// </summary>
    internal static Tensor RowSums(Tensor masked, Tensor? sequenceIds, int sequenceCount)
    {
        if (sequenceIds is null)
        {
            return masked.sum(1);                                                        // (B)
        }

        var index = sequenceIds.reshape(-1).clamp(0, Math.Max(0, sequenceCount - 1));   // (B·c): masked entries add 0
        return zeros(sequenceCount, masked.dtype, masked.device).index_add(0, index, masked.reshape(-1), 1.0); // (S)
    }
}
