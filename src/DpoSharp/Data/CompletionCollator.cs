using static TorchSharp.torch;

namespace DpoSharp.Data;

/// <summary>
/// Builds a <see cref="CompletionBatch"/> from tokenized prompt-completion rows: prompt then completion, right-padded
/// with the pad id to the longest row. The attention mask is 1 on real tokens, the completion mask 1 on completion
/// tokens; position ids are 0..T-1 on every position.
/// </summary>
/// <param name="padTokenId">Id written into padding positions.</param>
public sealed class CompletionCollator(int padTokenId)
{
    /// <summary>Id written into padding positions.</summary>
    public int PadTokenId { get; } = padTokenId;

    /// <summary>Collates the rows at <paramref name="indices"/> of <paramref name="data"/> on <paramref name="device"/>.</summary>
    public CompletionBatch Collate(IReadOnlyList<TokenizedCompletion> data, IReadOnlyList<int> indices, Device device)
    {
        int b = indices.Count;
        int t = indices.Max(i => data[i].PromptIds.Length + data[i].CompletionIds.Length);
        var ids = new long[b * t];
        var att = new long[b * t];
        var comp = new long[b * t];
        var pos = new long[b * t];
        long tokens = 0, completionTokens = 0;
        for (int r = 0; r < b; r++)
        {
            var ex = data[indices[r]];
            int j = 0;
            foreach (var id in ex.PromptIds)
            {
                ids[(r * t) + j] = id;
                att[(r * t) + j] = 1;
                pos[(r * t) + j] = j;
                j++;
            }

            foreach (var id in ex.CompletionIds)
            {
                ids[(r * t) + j] = id;
                att[(r * t) + j] = 1;
                comp[(r * t) + j] = 1;
                pos[(r * t) + j] = j;
                j++;
            }

            tokens += j;
            completionTokens += ex.CompletionIds.Length;
            for (; j < t; j++)
            {
                ids[(r * t) + j] = PadTokenId;
                pos[(r * t) + j] = j;
            }
        }

        return new CompletionBatch
        {
            InputIds = tensor(ids, [b, t], device: device),          // (B, T)
            AttentionMask = tensor(att, [b, t], device: device),
            CompletionMask = tensor(comp, [b, t], device: device),
            PositionIds = tensor(pos, [b, t], device: device),
            TokenCount = tokens,
            CompletionTokenCount = completionTokens,
            RowIndices = [.. indices],
        };
    }
}
