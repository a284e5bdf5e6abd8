using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// LD-DPO's length desensitisation (Liu et al. 2024, TRL's <c>ld_alpha</c>): a completion's log-prob becomes the sum
/// over its first ℓ tokens plus α × the sum over the rest, where ℓ = min(chosen tokens, rejected tokens) of its pair
/// (the "public" length both completions share). As per-token weights for <see cref="CompletionLogProbs.Forward"/>:
/// 1 for the first ℓ completion tokens of a sequence, α after them, 0 outside the completion.
/// </summary>
public static class LengthDesensitization
{
    /// <summary>
    /// The fp32 token weights of a preference batch, in the batch's own layout (B, T). In the ordinary layout the rows
    /// are the 2P sequences (chosen rows 0..P-1, then the rejected rows in the same order); in a prefix-shared or
    /// padding-free batch a row holds several sequences, told apart by <paramref name="segmentIds"/> (sequence i &lt; P
    /// is pair i's chosen completion, P + i its rejected one). Tokens are counted along each sequence's completion
    /// tokens, so prompt and padding positions never count.
    /// </summary>
    /// <param name="completionMask">(B, T): 1 where the token at that position is a completion token.</param>
    /// <param name="pairCount">P: the number of pairs.</param>
    /// <param name="alpha">α: the weight of the tokens beyond the public length (1: plain sums, 0: only the public part).</param>
    /// <param name="segmentIds">(B, T) int64 or null: <see cref="Data.SequenceBatch.SegmentIds"/> (the output sequence of
    /// each completion token); null: one sequence per row (B = 2P).</param>
    public static Tensor TokenWeights(Tensor completionMask, int pairCount, double alpha, Tensor? segmentIds = null)
    {
        ArgumentNullException.ThrowIfNull(completionMask);
        long b = completionMask.shape[0], t = completionMask.shape[1];
        if (completionMask.dim() != 2 || (segmentIds is null && b != 2L * pairCount))
        {
            throw new ArgumentException($"expected a (2P, T) completion mask with P = {pairCount}; got {string.Join('x', completionMask.shape)}", nameof(completionMask));
        }

        int s = 2 * pairCount;
        var mask = completionMask.to(ScalarType.Float32);                                   // (B, T)
        var seq = segmentIds is null
            ? arange(b, ScalarType.Int64, completionMask.device).unsqueeze(1).expand(b, t)  // (B, T): row r is sequence r
            : segmentIds.clamp(0, s - 1);                                                   // (B, T): masked positions: any
        // A sequence's completion tokens are contiguous in its row, so its k-th token (1-based) sits at running count
        // c = start + k - 1 of the row's completion tokens, where start is c at its first token.
        var running = mask.cumsum(1);                                                       // (B, T)
        var previous = cat([zeros(b, 1, ScalarType.Float32, completionMask.device), mask[.., ..^1]], 1);   // (B, T)
        var previousSeq = cat([full(b, 1, -1L, ScalarType.Int64, completionMask.device), seq[.., ..^1]], 1); // (B, T)
        var first = mask * (1 - (previous * previousSeq.eq(seq).to(ScalarType.Float32))); // (B, T): 1 at each sequence's first token
        var flatSeq = seq.reshape(-1);                                                      // (B·T)
        var start = zeros(s, ScalarType.Float32, completionMask.device).index_add(0, flatSeq, (first * running).reshape(-1), 1.0); // (S)
        var lengths = zeros(s, ScalarType.Float32, completionMask.device).index_add(0, flatSeq, mask.reshape(-1), 1.0);           // (S)
        var pub = minimum(lengths[..pairCount], lengths[pairCount..]);                     // (P): ℓ of each pair
        var publicLength = cat([pub, pub], 0);                                              // (S)
        var index = running - start.index_select(0, flatSeq).reshape(b, t) + 1;            // (B, T): 1-based index within the sequence
        var inPublic = index.le(publicLength.index_select(0, flatSeq).reshape(b, t)).to(ScalarType.Float32); // (B, T)
        return mask * (inPublic + ((1 - inPublic) * alpha));                                // (B, T)
    }

    /// <summary>Throws when <paramref name="tokenWeights"/> is given and its shape differs from the completion mask's.</summary>
    internal static void CheckShape(Tensor? tokenWeights, Tensor completionMask)
    {
        if (tokenWeights is not null && !tokenWeights.shape.SequenceEqual(completionMask.shape))
        {
            throw new ArgumentException($"token weights {string.Join('x', tokenWeights.shape)} must have the completion mask's shape {string.Join('x', completionMask.shape)}", nameof(tokenWeights));
        }
    }
}
