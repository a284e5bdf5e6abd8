namespace DpoSharp.Data;

/// <summary>
/// Checks of tokenized pairs against a model before any forward: ids outside the embedding table make libtorch
/// abort the process, and rows longer than the model's positions fail deep inside attention; both are reported here
/// naming the pair. Shared by training and scoring.
/// </summary>
public static class PairChecks
{
    /// <summary>Throws when a prompt, chosen or rejected id is outside 0..<paramref name="vocabSize"/>-1.</summary>
    /// <param name="pairs">The pairs.</param>
    /// <param name="vocabSize">The model's vocabulary size.</param>
    /// <param name="where">Names pair <c>i</c> in the message (e.g. <c>training pair 3</c>, <c>row 4</c>).</param>
    public static void ThrowIfOutsideVocabulary(IReadOnlyList<TokenizedPair> pairs, int vocabSize, Func<int, string> where)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentNullException.ThrowIfNull(where);
        for (int i = 0; i < pairs.Count; i++)
        {
            foreach (var (part, ids) in new[] { ("prompt", pairs[i].PromptIds), ("chosen", pairs[i].ChosenIds), ("rejected", pairs[i].RejectedIds) })
            {
                foreach (var id in ids)
                {
                    if (id < 0 || id >= vocabSize)
                    {
                        throw new DpoSharpException($"{where(i)}: {part} token id {id} is outside the model's vocabulary (0..{vocabSize - 1}); " +
                            "was the data tokenized for another model, or does the tokenizer not belong to this model?");
                    }
                }
            }
        }
    }

    /// <summary>Throws when the longest pair (prompt + longer completion, padded to <paramref name="padToMultipleOf"/>)
    /// needs more positions than the model has.</summary>
    /// <param name="pairs">The pairs.</param>
    /// <param name="maxPositions">The model's positions (n_positions).</param>
    /// <param name="padToMultipleOf">Padding multiple of the batches, or null.</param>
    /// <param name="dataName">Names the data in the message (<c>training</c>, <c>evaluation</c>).</param>
    /// <param name="modelType">The model type, for the message.</param>
    public static void ThrowIfLongerThanModel(IReadOnlyList<TokenizedPair> pairs, int maxPositions, int? padToMultipleOf, string dataName, string modelType)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        int multiple = padToMultipleOf ?? 1;
        int longest = pairs.Count == 0 ? 0 : pairs.Max(PreferenceCollator.PairLength);
        int padded = (longest + multiple - 1) / multiple * multiple;
        if (padded > maxPositions)
        {
            throw new DpoSharpException($"the longest {dataName} pair has {longest} tokens{(padded != longest ? $" ({padded} padded to a multiple of {multiple})" : "")}, more than this " +
                $"{modelType} model's {maxPositions} positions (n_positions in config.json). Set max_length to {maxPositions} or less (and max_prompt_length below it).");
        }
    }
}
