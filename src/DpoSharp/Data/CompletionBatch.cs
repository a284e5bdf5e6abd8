namespace DpoSharp.Data;

/// <summary>
/// A collated batch of prompt-completion rows for supervised fine-tuning: one row per example, right-padded,
/// (B, T) tensors; position ids count 0..T-1 along the whole row (padding included).
/// </summary>
public sealed class CompletionBatch : SequenceBatch
{
    /// <summary>Indices of the rows in the dataset.</summary>
    public IReadOnlyList<int> RowIndices { get; init; } = [];

    /// <summary>Completion tokens in the batch (the tokens the loss averages over).</summary>
    public long CompletionTokenCount { get; init; }

    /// <inheritdoc/>
    public override int ExampleCount => RowIndices.Count;
}
