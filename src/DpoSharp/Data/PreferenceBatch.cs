using static TorchSharp.torch;

namespace DpoSharp.Data;

/// <summary>
/// A collated batch of preference pairs for one forward pass: rows 0..P-1 are the chosen sequences
/// (prompt + chosen completion), rows P..2P-1 the rejected ones, in the same pair order.
/// All tensors are (2P, T), right-padded.
/// </summary>
public sealed class PreferenceBatch : IDisposable
{
    /// <summary>Token ids (2P, T) int64; padding uses the pad id.</summary>
    public required Tensor InputIds { get; init; }

    /// <summary>1 on real tokens, 0 on padding (2P, T) int64.</summary>
    public required Tensor AttentionMask { get; init; }

    /// <summary>1 on completion tokens (the tokens whose log-probs are summed), 0 on prompt and padding (2P, T) int64.
    /// Position t of row r is a completion token; its log-prob comes from the logits at t-1.</summary>
    public required Tensor CompletionMask { get; init; }

    /// <summary>Position ids (2P, T) int64: 0..len-1 per row (later: per packed segment).</summary>
    public required Tensor PositionIds { get; init; }

    /// <summary>Number of pairs P.</summary>
    public int PairCount => (int)(InputIds.shape[0] / 2);

    /// <summary>Real (non-pad) tokens in the batch.</summary>
    public long TokenCount { get; init; }

    /// <summary>Indices of the pairs in the dataset (for cached reference log-probs and data position).</summary>
    public IReadOnlyList<int> PairIndices { get; init; } = [];

    /// <summary>Moves all tensors to <paramref name="device"/> (returns a new batch; this one is unchanged).</summary>
    public PreferenceBatch To(Device device) => new()
    {
        InputIds = InputIds.to(device),
        AttentionMask = AttentionMask.to(device),
        CompletionMask = CompletionMask.to(device),
        PositionIds = PositionIds.to(device),
        TokenCount = TokenCount,
        PairIndices = PairIndices,
    };

    /// <inheritdoc/>
    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask.Dispose();
        CompletionMask.Dispose();
        PositionIds.Dispose();
    }
}
