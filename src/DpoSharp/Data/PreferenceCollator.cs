using static TorchSharp.torch;

namespace DpoSharp.Data;

/// <summary>
/// Builds a <see cref="PreferenceBatch"/> from tokenized pairs: rows 0..P-1 are prompt + chosen, rows P..2P-1 prompt
/// + rejected (same pair order), right-padded with the pad id to the longest row (rounded up to
/// <see cref="PadToMultipleOf"/>). The attention mask is 1 on real tokens; the completion mask is 1 on completion
/// tokens only; position ids count 0..len-1 on real tokens and are 0 on padding.
/// </summary>
public sealed class PreferenceCollator
{
    /// <summary>Creates a collator.</summary>
    /// <param name="padTokenId">Id written into padding positions (masked out everywhere).</param>
    /// <param name="padToMultipleOf">Round the padded length up to a multiple of this (null: no rounding).</param>
    public PreferenceCollator(int padTokenId, int? padToMultipleOf = null)
    {
        if (padTokenId < 0)
        {
            throw new DpoSharpException($"The pad token id must be non-negative, got {padTokenId}.");
        }

        if (padToMultipleOf is < 1)
        {
            throw new DpoSharpException($"pad_to_multiple_of must be at least 1, got {padToMultipleOf}.");
        }

        PadTokenId = padTokenId;
        PadToMultipleOf = padToMultipleOf;
    }

    /// <summary>Id written into padding positions.</summary>
    public int PadTokenId { get; }

    /// <summary>Padded length multiple, or null.</summary>
    public int? PadToMultipleOf { get; }

    /// <summary>Collates <paramref name="pairs"/>; <see cref="PreferenceBatch.PairIndices"/> are 0..P-1.</summary>
    public PreferenceBatch Collate(IReadOnlyList<TokenizedPair> pairs, Device? device = null) =>
        Collate(pairs, Enumerable.Range(0, pairs.Count).ToArray(), device);

    /// <summary>Collates the pairs at <paramref name="indices"/> of <paramref name="dataset"/> (a sampler's batch);
    /// <see cref="PreferenceBatch.PairIndices"/> are those indices.</summary>
    public PreferenceBatch Collate(IReadOnlyList<TokenizedPair> dataset, IReadOnlyList<int> indices, Device? device = null)
    {
        if (indices.Count == 0)
        {
            throw new ArgumentException("A batch needs at least one pair.", nameof(indices));
        }

        var p = indices.Count;
        var pairs = indices.Select(i => dataset[i]).ToArray();
        var t = pairs.Max(x => x.PromptIds.Length + Math.Max(x.ChosenIds.Length, x.RejectedIds.Length));
        if (PadToMultipleOf is int m)
        {
            t = (t + m - 1) / m * m;
        }

        var rows = 2 * p;
        var ids = new long[rows * t];
        var attention = new long[rows * t];
        var completion = new long[rows * t];
        var positions = new long[rows * t];
        Array.Fill(ids, PadTokenId);
        long tokens = 0;
        for (var row = 0; row < rows; row++)
        {
            var pair = pairs[row % p];
            var answer = row < p ? pair.ChosenIds : pair.RejectedIds;
            var offset = row * t;
            var prompt = pair.PromptIds;
            for (var j = 0; j < prompt.Length; j++)
            {
                ids[offset + j] = prompt[j];
            }

            for (var j = 0; j < answer.Length; j++)
            {
                ids[offset + prompt.Length + j] = answer[j];
                completion[offset + prompt.Length + j] = 1;
            }

            var len = prompt.Length + answer.Length;
            for (var j = 0; j < len; j++)
            {
                attention[offset + j] = 1;
                positions[offset + j] = j;
            }

            tokens += len;
        }

        var shape = new long[] { rows, t };
        var target = device ?? CPU;
        return new PreferenceBatch
        {
            InputIds = tensor(ids, shape, ScalarType.Int64, target), // (2P, T)
            AttentionMask = tensor(attention, shape, ScalarType.Int64, target),
            CompletionMask = tensor(completion, shape, ScalarType.Int64, target),
            PositionIds = tensor(positions, shape, ScalarType.Int64, target),
            TokenCount = tokens,
            PairIndices = indices.ToArray(),
        };
    }

    /// <summary>Sequence length of a pair for batching: prompt + the longer completion.</summary>
    public static int PairLength(TokenizedPair pair) => pair.PromptIds.Length + Math.Max(pair.ChosenIds.Length, pair.RejectedIds.Length);
}
