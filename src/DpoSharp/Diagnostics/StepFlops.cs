using DpoSharp.Models;

namespace DpoSharp.Diagnostics;

/// <summary>
/// The matmul sizes of a decoder-only model that decide its FLOPs per token: the weights every token multiplies
/// (<see cref="LinearParameters"/>: attention and MLP projections of every layer, LoRA adapters included), the
/// <c>lm_head</c> (<see cref="LmHeadParameters"/>, D·V, only where logits are read), and the attention width.
/// Embedding lookups, norms and activations are not matmuls and are not counted.
/// </summary>
/// <param name="LinearParameters">Parameters of the 2-D weights inside the decoder layers (all layers).</param>
/// <param name="LmHeadParameters">D·V.</param>
/// <param name="Layers">Decoder layers.</param>
/// <param name="AttentionWidth">Query heads × head dim (the width of Q·Kᵀ and P·V).</param>
public sealed record FlopShape(long LinearParameters, long LmHeadParameters, int Layers, int AttentionWidth)
{
    /// <summary>The shape of <paramref name="model"/>: its 2-D parameters other than embeddings and the <c>lm_head</c>.</summary>
    public static FlopShape FromModel(CausalLMBase model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var c = model.Config;
        long linear = model.named_parameters()
            .Where(kv => kv.parameter.dim() == 2 && !IsEmbeddingOrHead(kv.name))
            .Sum(kv => kv.parameter.numel());
        return new FlopShape(linear, (long)c.HiddenSize * c.VocabSize, c.NumLayers, c.NumHeads * c.HeadDim);
    }

    private static bool IsEmbeddingOrHead(string name) =>
        name.StartsWith("lm_head", StringComparison.Ordinal) || name.EndsWith("wte.weight", StringComparison.Ordinal) ||
        name.EndsWith("wpe.weight", StringComparison.Ordinal) || name.EndsWith("embed_tokens.weight", StringComparison.Ordinal);
}

/// <summary>
/// Analytic FLOPs of the work a DPO step needs (for <c>dposharp bench</c>'s <c>achieved_gflops</c> and <c>mfu</c>).
/// A forward costs 2 FLOPs per weight per token through the decoder layers, 2·D·V per position whose logits are read,
/// and 4·(heads × head dim) per (query, visible key) pair per layer (Q·Kᵀ and P·V; causal: query i sees i + 1 keys).
/// The policy's forward + backward is 3× its forward (the backward computes gradients of activations and of weights);
/// a policy whose weights are frozen (LoRA base) 2×; the reference's forward 1×. Work done twice by choice —
/// recomputation (gradient checkpointing, the chunked lm_head's backward) or a prompt run once per completion — is
/// not needed work and not counted: with prefix sharing each prompt token counts once, without it twice.
/// </summary>
public static class StepFlops
{
    /// <summary>Forward FLOPs of <paramref name="tokens"/> tokens with <paramref name="attendedPairs"/> (query, key)
    /// pairs of attention per layer and <paramref name="logitPositions"/> rows through the <c>lm_head</c>.</summary>
    public static double Forward(FlopShape shape, long tokens, long attendedPairs, long logitPositions)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return (2.0 * shape.LinearParameters * tokens) + (2.0 * shape.LmHeadParameters * logitPositions) + (4.0 * shape.Layers * shape.AttentionWidth * attendedPairs);
    }

    /// <summary>
    /// Forward FLOPs of one pair (prompt <paramref name="promptLength"/>, completions <paramref name="chosenLength"/>
    /// and <paramref name="rejectedLength"/>): with <paramref name="prefixSharing"/> the prompt once and each
    /// completion attending to it, otherwise two full sequences; logits at the positions predicting completion
    /// tokens only.
    /// </summary>
    public static double PairForward(FlopShape shape, int promptLength, int chosenLength, int rejectedLength, bool prefixSharing)
    {
        long p = promptLength, c = chosenLength, r = rejectedLength;
        static long Causal(long n) => n * (n + 1) / 2;                       // Σ_{i<n} (i + 1)
        long tokens, pairs;
        if (prefixSharing)
        {
            tokens = p + c + r;
            pairs = Causal(p) + (c * p) + Causal(c) + (r * p) + Causal(r);
        }
        else
        {
            tokens = (2 * p) + c + r;
            pairs = Causal(p + c) + Causal(p + r);
        }

        // Position t-1 predicts completion token t: every completion token has one predicting position when the
        // prompt is not empty; the first token of a completion without prompt is not predicted.
        long logits = p > 0 ? c + r : Math.Max(0, c - 1) + Math.Max(0, r - 1);
        return Forward(shape, tokens, pairs, logits);
    }

    /// <summary>
    /// FLOPs one pair needs in a DPO step: the policy's forward and backward (3× forward; 2× with
    /// <paramref name="frozenPolicyWeights"/>), plus the reference's forward unless <paramref name="cachedReference"/>.
    /// </summary>
    public static double PairStep(FlopShape shape, int promptLength, int chosenLength, int rejectedLength, bool prefixSharing, bool cachedReference, bool frozenPolicyWeights = false)
    {
        double forward = PairForward(shape, promptLength, chosenLength, rejectedLength, prefixSharing);
        return (forward * (frozenPolicyWeights ? 2 : 3)) + (cachedReference ? 0 : forward);
    }

    /// <summary>
    /// FLOPs a DPO step over <paramref name="pairs"/> identical pairs needs: the policy's forward and backward
    /// (3× forward; 2× with <paramref name="frozenPolicyWeights"/>), plus the reference's forward unless
    /// <paramref name="cachedReference"/>.
    /// </summary>
    public static double DpoStep(FlopShape shape, int pairs, int promptLength, int completionLength, bool prefixSharing, bool cachedReference, bool frozenPolicyWeights = false)
    {
        return pairs * PairStep(shape, promptLength, completionLength, completionLength, prefixSharing, cachedReference, frozenPolicyWeights);
    }
}
