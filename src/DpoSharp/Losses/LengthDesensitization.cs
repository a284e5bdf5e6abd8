using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// LD-DPO's length desensitisation (Liu et al. 2024, TRL's <c>ld_alpha</c>): a completion's log-prob becomes the sum
/// over its first ℓ tokens plus α × the sum over the rest, where ℓ = min(chosen tokens, rejected tokens) of its pair
/// (the "public" length both completions share). As per-token weights for <see cref="CompletionLogProbs.Forward"/>:
/// 1 for the first ℓ completion tokens of a row, α after them, 0 outside the completion.
/// </summary>
public static class LengthDesensitization
{
    /// <summary>
    /// The (2P, T) fp32 token weights of a preference batch (chosen rows 0..P-1, then the rejected rows in the same
    /// order). Tokens are counted along each row's completion mask, so prompt and padding positions never count.
    /// </summary>
    /// <param name="completionMask">(2P, T): 1 where the token at that position is a completion token.</param>
    /// <param name="pairCount">P: the number of pairs.</param>
    /// <param name="alpha">α: the weight of the tokens beyond the public length (1: plain sums, 0: only the public part).</param>
    public static Tensor TokenWeights(Tensor completionMask, int pairCount, double alpha)
    {
        ArgumentNullException.ThrowIfNull(completionMask);
        if (completionMask.dim() != 2 || completionMask.shape[0] != 2L * pairCount)
        {
            throw new ArgumentException($"expected a (2P, T) completion mask with P = {pairCount}; got {string.Join('x', completionMask.shape)}", nameof(completionMask));
        }

        var mask = completionMask.to(ScalarType.Float32);                    // (2P, T)
        var index = mask.cumsum(1);                                         // (2P, T): 1-based index among completion tokens
        var lengths = mask.sum(1);                                          // (2P)
        var pub = minimum(lengths[..pairCount], lengths[pairCount..]);      // (P): ℓ of each pair
        var publicLength = cat([pub, pub], 0).unsqueeze(1);                 // (2P, 1)
        var inPublic = index.le(publicLength).to(ScalarType.Float32);       // (2P, T)
        return mask * (inPublic + ((1 - inPublic) * alpha));                // (2P, T)
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
