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
    /// <summary>Token ids (B, T) int64; padding uses the pad id.</summary>
    public required Tensor InputIds { get; init; }

    /// <summary>1 on real tokens, 0 on padding (B, T) int64.</summary>
    public required Tensor AttentionMask { get; init; }

    /// <summary>1 on completion tokens (the tokens whose log-probs are summed), 0 on prompt and padding (B, T) int64.
    /// Position t of row r is a completion token; its log-prob comes from the logits at t-1.</summary>
    public required Tensor CompletionMask { get; init; }

    /// <summary>Position ids (B, T) int64.</summary>
    public required Tensor PositionIds { get; init; }

    /// <summary>Real (non-pad) tokens in the batch.</summary>
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
        GC.SuppressFinalize(this);
    }
}
