using static TorchSharp.torch;

namespace DpoSharp.Data;

/// <summary>
/// A collated batch of unpaired examples for KTO: one row per example (prompt + completion, right-padded (B, T)),
/// their labels, and the KL rows: the same prompts with the completions rotated by one within the batch (row i gets
/// the completion of row i − 1, row 0 the last one), TRL's mismatched pairs for the KL reference point.
/// </summary>
public sealed class KtoBatch : SequenceBatch
{
    /// <summary>(B) bool: true where the completion is desirable.</summary>
    public required Tensor Labels { get; init; }

    /// <summary>The labels on the host.</summary>
    public required IReadOnlyList<bool> LabelValues { get; init; }

    /// <summary>The mismatched prompt/completion rows (B rows), or null when the loss needs no KL estimate.</summary>
    public CompletionBatch? KlRows { get; init; }

    /// <summary>Indices of the examples in the dataset.</summary>
    public IReadOnlyList<int> RowIndices { get; init; } = [];

    /// <inheritdoc/>
    public override int ExampleCount => RowIndices.Count;
}

/// <summary>Builds <see cref="KtoBatch"/>es: the rows with <see cref="CompletionCollator"/>, and the rotated KL rows.</summary>
/// <param name="padTokenId">Id written into padding positions.</param>
/// <param name="withKl">Build the KL rows (the <c>kto</c> loss; <c>apo_zero_unpaired</c> needs none).</param>
public sealed class KtoCollator(int padTokenId, bool withKl = true)
{
    private readonly CompletionCollator _rows = new(padTokenId);

    /// <summary>Whether the KL rows are built.</summary>
    public bool WithKl { get; } = withKl;

    /// <summary>
    /// The mismatched pairs of a batch: for rows 0..B−1, prompt i with the completion of row (i − 1) mod B (TRL's
    /// <c>_get_kl_dataset</c>: completions shifted by one within a batch).
    /// </summary>
    public static IReadOnlyList<TokenizedCompletion> MismatchedPairs(IReadOnlyList<TokenizedUnpaired> batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        int b = batch.Count;
        return [.. Enumerable.Range(0, b).Select(i => new TokenizedCompletion(batch[i].PromptIds, batch[(i - 1 + b) % b].CompletionIds))];
    }

    /// <summary>Collates the examples at <paramref name="indices"/> of <paramref name="data"/> on <paramref name="device"/>.</summary>
    public KtoBatch Collate(IReadOnlyList<TokenizedUnpaired> data, IReadOnlyList<int> indices, Device device)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(indices);
        var picked = indices.Select(i => data[i]).ToList();
        var order = Enumerable.Range(0, picked.Count).ToArray();
        var rows = _rows.Collate([.. picked.Select(e => new TokenizedCompletion(e.PromptIds, e.CompletionIds))], order, device);   // (B, T)
        var kl = WithKl ? _rows.Collate(MismatchedPairs(picked), order, device) : null;                                           // (B, T')
        var labels = picked.Select(e => e.Label).ToArray();
        return new KtoBatch
        {
            InputIds = rows.InputIds,
            AttentionMask = rows.AttentionMask,
            CompletionMask = rows.CompletionMask,
            PositionIds = rows.PositionIds,
            TokenCount = rows.TokenCount,
            Labels = tensor(labels, device: device),
            LabelValues = labels,
            KlRows = kl,
            RowIndices = [.. indices],
        };
    }
}

/// <summary>Tokenized unpaired examples as a batch source: one loss unit per example (TRL averages the batch's
/// losses over its examples).</summary>
/// <param name="rows">The examples.</param>
/// <param name="collator">Builds the batches.</param>
public sealed class UnpairedBatchSource(IReadOnlyList<TokenizedUnpaired> rows, KtoCollator collator) : IBatchSource<KtoBatch>
{
    /// <summary>The examples.</summary>
    public IReadOnlyList<TokenizedUnpaired> Rows { get; } = rows;

    /// <inheritdoc/>
    public int Count => Rows.Count;

    /// <inheritdoc/>
    public int Length(int index) => Rows[index].PromptIds.Length + Rows[index].CompletionIds.Length;

    /// <inheritdoc/>
    public long LossUnits(IReadOnlyList<int> indices) => indices.Count;

    /// <inheritdoc/>
    public KtoBatch Collate(IReadOnlyList<int> indices, Device device) => collator.Collate(Rows, indices, device);
}
