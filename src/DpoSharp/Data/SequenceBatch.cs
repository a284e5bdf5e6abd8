using static TorchSharp.torch;

namespace DpoSharp.Data;

/// <summary>
/// Right-padded rows of token ids for one forward pass, with the masks every objective needs: the attention mask
/// (real tokens), the completion mask (the tokens whose log-probs count) and position ids. All tensors are (B, T) int64.
/// <see cref="PreferenceBatch"/> (chosen rows, then rejected rows) and <see cref="CompletionBatch"/> (SFT rows) are
/// the two kinds.
/// </summary>
public abstract class SequenceBatch : IDisposable
{
    private readonly int? _sequenceCount;

    /// <summary>Token ids (B, T) int64; padding uses the pad id.</summary>
    public required Tensor InputIds { get; init; }

    /// <summary>1 on real tokens, 0 on padding (B, T) int64.</summary>
    public required Tensor AttentionMask { get; init; }

    /// <summary>1 on completion tokens (the tokens whose log-probs are summed), 0 on prompt and padding (B, T) int64.
    /// Position t of row r is a completion token; its log-prob comes from the logits at t-1.</summary>
    public required Tensor CompletionMask { get; init; }

    /// <summary>Position ids (B, T) int64.</summary>
    public required Tensor PositionIds { get; init; }

    /// <summary>
    /// Segment of each token (B, T) int64, or null: one sequence per row, right-padded (the ordinary layout). Set for
    /// prefix-shared and padding-free batches, where a row holds several segments: the tokens of a completion carry
    /// the index of their output sequence (0..<see cref="SequenceCount"/>-1; log-probs are summed per output
    /// sequence), shared prompt tokens an index ≥ <see cref="SequenceCount"/>, padding −1. A token attends the earlier
    /// tokens of its own segment and of its <see cref="ParentSegmentIds"/> segment only (<c>AttentionContext.SegmentMask</c>).
    /// </summary>
    public Tensor? SegmentIds { get; init; }

    /// <summary>
    /// (B, T) int64 with <see cref="SegmentIds"/>: the segment whose tokens a token may attend besides its own (a
    /// completion's shared prompt); equal to the token's own segment where there is none; −1 on padding.
    /// </summary>
    public Tensor? ParentSegmentIds { get; init; }

    /// <summary>
    /// With <see cref="SegmentIds"/>: (S, Tv) int64 flat indices into the (B·T) tokens, row s listing, in order, the
    /// tokens output sequence s attends (its shared prompt and itself), right-padded with its first token. Attention
    /// runs on these rows with the causal fast path (<c>AttentionContext.SequenceGather</c>).
    /// </summary>
    public Tensor? SequenceGather { get; init; }

    /// <summary>With <see cref="SequenceGather"/>: (B·T) int64, for each token the flat index into the (S·Tv)
    /// attention outputs of the sequence that computes it (padding: any).</summary>
    public Tensor? SequenceScatter { get; init; }

    /// <summary>Output sequences: log-prob sums come back one per sequence, in this order. Default: one per row.</summary>
    public int SequenceCount
    {
        get => _sequenceCount ?? (int)InputIds.shape[0];
        init => _sequenceCount = value;
    }

    /// <summary>Real (non-pad) tokens in the batch, counted as one row per sequence (prefix-shared and packed
    /// batches report the tokens their sequences hold, not the fewer tokens they run).</summary>
    public long TokenCount { get; init; }

    /// <summary>Number of dataset examples in the batch (pairs for preference batches, rows for SFT batches).</summary>
    public abstract int ExampleCount { get; }

    /// <inheritdoc/>
    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask.Dispose();
        CompletionMask.Dispose();
        PositionIds.Dispose();
        SegmentIds?.Dispose();
        ParentSegmentIds?.Dispose();
        SequenceGather?.Dispose();
        SequenceScatter?.Dispose();
        GC.SuppressFinalize(this);
    }
}
