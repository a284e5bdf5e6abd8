using DpoSharp.Data;
using static TorchSharp.torch;

namespace DpoSharp.Training;

/// <summary>
/// Builds a <see cref="PreferenceBatch"/> from tokenized pairs: rows 0..P-1 are prompt+chosen, rows P..2P-1
/// prompt+rejected, right-padded with the pad id; the completion mask marks the completion tokens.
/// (Trainer-internal; the data stream's <c>PreferenceCollator</c> adds packing and truncation policies.)
/// </summary>
internal static class PairCollator
{
    public static PreferenceBatch Collate(IReadOnlyList<TokenizedPair> dataset, IReadOnlyList<int> indices, int padTokenId)
    {
        int p = indices.Count;
        var rows = new (int[] Prompt, int[] Completion)[2 * p];
        for (int i = 0; i < p; i++)
        {
            var pair = dataset[indices[i]];
            rows[i] = (pair.PromptIds, pair.ChosenIds);
            rows[p + i] = (pair.PromptIds, pair.RejectedIds);
        }

        int t = Math.Max(1, rows.Max(r => r.Prompt.Length + r.Completion.Length));
        var ids = new long[2 * p * t];
        var attn = new long[2 * p * t];
        var comp = new long[2 * p * t];
        var pos = new long[2 * p * t];
        long tokens = 0;
        for (int r = 0; r < rows.Length; r++)
        {
            var (prompt, completion) = rows[r];
            int len = prompt.Length + completion.Length;
            tokens += len;
            for (int j = 0; j < t; j++)
            {
                int k = (r * t) + j;
                if (j < len)
                {
                    ids[k] = j < prompt.Length ? prompt[j] : completion[j - prompt.Length];
                    attn[k] = 1;
                    comp[k] = j >= prompt.Length ? 1 : 0;
                    pos[k] = j;
                }
                else
                {
                    ids[k] = padTokenId;
                    pos[k] = Math.Max(0, len - 1);
                }
            }
        }

        long[] shape = [2 * p, t];
        return new PreferenceBatch
        {
            InputIds = tensor(ids, shape),                 // (2P, T)
            AttentionMask = tensor(attn, shape),
            CompletionMask = tensor(comp, shape),
            PositionIds = tensor(pos, shape),
            TokenCount = tokens,
            PairIndices = indices.ToArray(),
        };
    }
}
