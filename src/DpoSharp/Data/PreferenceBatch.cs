using static TorchSharp.torch;

namespace DpoSharp.Data;

/// <summary>
/// A collated batch of preference pairs for one forward pass: rows 0..P-1 are the chosen sequences
/// (prompt + chosen completion), rows P..2P-1 the rejected ones, in the same pair order.
/// All tensors are (2P, T), right-padded; position ids are 0..len-1 per row. Prefix-shared and padding-free batches
/// (<see cref="PreferenceCollator.PrefixSharing"/>, <see cref="PreferenceCollator.PaddingFree"/>) hold the same 2P
/// sequences in fewer rows (<see cref="SequenceBatch.SegmentIds"/>): sequence i &lt; P is pair i's chosen completion,
/// P + i its rejected one.
/// </summary>
public sealed class PreferenceBatch : SequenceBatch
{
    /// <summary>Number of pairs P.</summary>
    public int PairCount => SequenceCount / 2;

    /// <inheritdoc/>
    public override int ExampleCount => PairCount;

    /// <summary>Indices of the pairs in the dataset (for cached reference log-probs and data position).</summary>
    public IReadOnlyList<int> PairIndices { get; init; } = [];

    /// <summary>Moves all tensors to <paramref name="device"/> (returns a new batch; this one is unchanged).</summary>
    public PreferenceBatch To(Device device) => new()
    {
        InputIds = InputIds.to(device),
        AttentionMask = AttentionMask.to(device),
        CompletionMask = CompletionMask.to(device),
        PositionIds = PositionIds.to(device),
        SegmentIds = SegmentIds?.to(device),
        ParentSegmentIds = ParentSegmentIds?.to(device),
        SequenceGather = SequenceGather?.to(device),
        SequenceScatter = SequenceScatter?.to(device),
        SequenceCount = SequenceCount,
        TokenCount = TokenCount,
        PairIndices = PairIndices,
    };
}
