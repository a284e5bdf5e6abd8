using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>
/// What every layer's attention needs for one forward call: the mask (or the causal fast path), the RoPE
/// cos/sin tables and the KV cache.
/// </summary>
public sealed class AttentionContext
{
    /// <summary>Boolean mask (B, 1, T, S), true = attend; null when <see cref="IsCausal"/> or no mask is needed.</summary>
    public Tensor? Mask { get; init; }

    /// <summary>Use SDPA's built-in causal mask (no cache, no padding).</summary>
    public bool IsCausal { get; init; }

    /// <summary>
    /// (S, Tv) int64 flat indices into the (B·T) tokens: run attention on these rows instead of the batch's rows (rows
    /// holding several sequences; <c>SequenceBatch.SequenceGather</c>), causally, with <see cref="SequenceScatter"/>
    /// mapping the outputs back. Null: attention on the batch's rows with <see cref="Mask"/> / <see cref="IsCausal"/>.
    /// </summary>
    public Tensor? SequenceGather { get; init; }

    /// <summary>(B·T) int64 flat indices into the (S·Tv) attention outputs of <see cref="SequenceGather"/>.</summary>
    public Tensor? SequenceScatter { get; init; }

    /// <summary>RoPE cos (B, 1, T, rotary_dim), or null (gpt2).</summary>
    public Tensor? Cos { get; init; }

    /// <summary>RoPE sin (B, 1, T, rotary_dim), or null (gpt2).</summary>
    public Tensor? Sin { get; init; }

    /// <summary>The KV cache, or null.</summary>
    public KvCache? Cache { get; init; }

    /// <summary>
    /// Recompute each decoder layer in the backward instead of keeping its activations (gradient checkpointing; see
    /// <see cref="DecoderStack.Run"/>). Ignored with a <see cref="Cache"/> or when gradients are off.
    /// </summary>
    public bool CheckpointLayers { get; init; }

    /// <summary>
    /// The (B, 1, T, T) boolean mask of rows holding several segments (prefix-shared or packed sequences): query i
    /// attends key j ≤ i when j is in i's segment or in i's parent segment (a shared prompt); a query always attends
    /// itself, so padding rows (segment −1) stay finite.
    /// </summary>
    /// <param name="segmentIds">(B, T) int64 segment of each token, −1 on padding.</param>
    /// <param name="parentSegmentIds">(B, T) int64 segment each token may attend besides its own.</param>
    public static Tensor SegmentMask(Tensor segmentIds, Tensor parentSegmentIds)
    {
        ArgumentNullException.ThrowIfNull(segmentIds);
        ArgumentNullException.ThrowIfNull(parentSegmentIds);
        long t = segmentIds.shape[1];
        var keys = segmentIds.unsqueeze(1);                                             // (B, 1, T): key j
        var same = keys.eq(segmentIds.unsqueeze(2)).logical_or(keys.eq(parentSegmentIds.unsqueeze(2))); // (B, T, T)
        var causal = ones(t, t, ScalarType.Bool, segmentIds.device).tril();            // (T, T)
        var allowed = same.logical_and(keys.ge(0)).logical_and(causal);               // (B, T, T)
        allowed = allowed.logical_or(eye(t, t, ScalarType.Bool, segmentIds.device));    // queries always see themselves
        return allowed.unsqueeze(1);                                                    // (B, 1, T, T)
    }

    /// <summary>
    /// A full (B, 1, T, T) boolean mask (<see cref="SegmentMask"/>) with the sliding window applied by position:
    /// key j is dropped when position(i) − position(j) ≥ window.
    /// </summary>
    public static Tensor WithSlidingWindow(Tensor mask, Tensor positionIds, int? slidingWindow)
    {
        ArgumentNullException.ThrowIfNull(mask);
        ArgumentNullException.ThrowIfNull(positionIds);
        if (slidingWindow is not int w || positionIds.shape[1] <= w)
        {
            return mask;
        }

        var distance = positionIds.unsqueeze(2) - positionIds.unsqueeze(1);            // (B, T, T)
        return mask.logical_and(distance.lt(w).unsqueeze(1));                          // (B, 1, T, T)
    }

    /// <summary>
    /// Builds the mask for <paramref name="queryLength"/> new tokens after <paramref name="past"/> cached ones.
    /// <paramref name="attentionMask"/> is (B, T) for the new tokens (cached ones count as real) or (B, past+T).
    /// Query i attends key j when j is real, j ≤ past+i, and (sliding window) past+i−j &lt; window; a query always
    /// attends itself so padding rows stay finite.
    /// </summary>
    public static (Tensor? Mask, bool IsCausal) BuildMask(Tensor? attentionMask, long batch, long queryLength, long past, int? slidingWindow, Device device)
    {
        long total = past + queryLength;
        bool windowMatters = slidingWindow is int w && total > w;
        if (attentionMask is null && !windowMatters)
        {
            if (past == 0)
            {
                return (null, queryLength > 1);
            }

            if (queryLength == 1)
            {
                return (null, false);
            }
        }

        var q = arange(past, total, ScalarType.Int64, device).unsqueeze(1);   // (T, 1)
        var k = arange(0, total, ScalarType.Int64, device).unsqueeze(0);      // (1, S)
        var allowed = k.le(q);                                                // (T, S)
        if (windowMatters)
        {
            allowed = allowed.logical_and((q - k).lt(slidingWindow!.Value));
        }

        Tensor mask = allowed.unsqueeze(0).unsqueeze(0);                      // (1, 1, T, S)
        if (attentionMask is not null)
        {
            var keys = attentionMask.to(ScalarType.Bool);
            if (keys.shape[1] == queryLength && past > 0)
            {
                keys = cat([ones(batch, past, ScalarType.Bool, device), keys], 1); // (B, S)
            }
            else if (keys.shape[1] != total)
            {
                throw new ArgumentException($"attention_mask has {keys.shape[1]} columns; expected {queryLength} or {total}");
            }

            mask = mask.logical_and(keys.unsqueeze(1).unsqueeze(1));          // (B, 1, T, S)
            mask = mask.logical_or(k.eq(q).unsqueeze(0).unsqueeze(0));        // queries always see themselves
        }

        return (mask.expand(batch, 1, queryLength, total), false);           // (B, 1, T, S)
    }
}
