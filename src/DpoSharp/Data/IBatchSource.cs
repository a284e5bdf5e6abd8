using static TorchSharp.torch;

namespace DpoSharp.Data;

/// <summary>
/// A dataset as the training loop sees it: a number of examples, their lengths (for length-grouped sampling), and
/// batches collated from a sampler's indices. <see cref="LossUnits"/> says over how many units an objective's summed
/// loss is averaged (pairs for DPO, completion tokens for SFT), so gradient accumulation can scale each micro-batch
/// before the step's first forward.
/// </summary>
/// <typeparam name="TBatch">The collated batch type.</typeparam>
public interface IBatchSource<out TBatch>
    where TBatch : SequenceBatch
{
    /// <summary>Number of examples.</summary>
    int Count { get; }

    /// <summary>Length in tokens of example <paramref name="index"/> (what length grouping sorts by).</summary>
    int Length(int index);

    /// <summary>The units the loss of these examples is averaged over (pairs, or completion tokens).</summary>
    long LossUnits(IReadOnlyList<int> indices);

    /// <summary>Collates the examples at <paramref name="indices"/> on <paramref name="device"/>.</summary>
    TBatch Collate(IReadOnlyList<int> indices, Device device);
}

/// <summary>Tokenized preference pairs as a batch source: one loss unit per pair.</summary>
/// <param name="pairs">The pairs.</param>
/// <param name="collator">Builds the batches.</param>
public sealed class PreferenceBatchSource(IReadOnlyList<TokenizedPair> pairs, PreferenceCollator collator) : IBatchSource<PreferenceBatch>
{
    /// <summary>The pairs.</summary>
    public IReadOnlyList<TokenizedPair> Pairs { get; } = pairs;

    /// <summary>The collator.</summary>
    public PreferenceCollator Collator { get; } = collator;

    /// <inheritdoc/>
    public int Count => Pairs.Count;

    /// <inheritdoc/>
    public int Length(int index) => PreferenceCollator.PairLength(Pairs[index]);

    /// <inheritdoc/>
    public long LossUnits(IReadOnlyList<int> indices) => indices.Count;

    /// <inheritdoc/>
    public PreferenceBatch Collate(IReadOnlyList<int> indices, Device device) => Collator.Collate(Pairs, indices, device);
}

/// <summary>Tokenized prompt-completion rows as a batch source: the loss averages over completion tokens.</summary>
/// <param name="rows">The rows.</param>
/// <param name="collator">Builds the batches.</param>
public sealed class CompletionBatchSource(IReadOnlyList<TokenizedCompletion> rows, CompletionCollator collator) : IBatchSource<CompletionBatch>
{
    /// <summary>The rows.</summary>
    public IReadOnlyList<TokenizedCompletion> Rows { get; } = rows;

    /// <inheritdoc/>
    public int Count => Rows.Count;

    /// <inheritdoc/>
    public int Length(int index) => Rows[index].PromptIds.Length + Rows[index].CompletionIds.Length;

    /// <inheritdoc/>
    public long LossUnits(IReadOnlyList<int> indices) => indices.Sum(i => (long)Rows[i].CompletionIds.Length);

    /// <inheritdoc/>
    public CompletionBatch Collate(IReadOnlyList<int> indices, Device device) => collator.Collate(Rows, indices, device);
}
