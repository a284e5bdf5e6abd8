using DpoSharp.Models;
using TorchSharp;
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

    /// <summary>RoPE cos (B, 1, T, rotary_dim), or null (gpt2).</summary>
    public Tensor? Cos { get; init; }

    /// <summary>RoPE sin (B, 1, T, rotary_dim), or null (gpt2).</summary>
    public Tensor? Sin { get; init; }

    /// <summary>The KV cache, or null.</summary>
    public KvCache? Cache { get; init; }

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

/// <summary>RoPE (rotate-half layout) with <c>rope_theta</c>, linear or llama3 scaling, and partial rotary dims.</summary>
public sealed class RotaryEmbedding
{
    private readonly float[] _invFreq;

    /// <summary>Builds the inverse frequencies for <paramref name="config"/>.</summary>
    public RotaryEmbedding(ModelConfig config)
    {
        RotaryDim = config.RotaryDim;
        int half = RotaryDim / 2;
        var inv = new double[half];
        for (int i = 0; i < half; i++)
        {
            inv[i] = 1.0 / Math.Pow(config.RopeTheta, (2.0 * i) / RotaryDim);
        }

        if (config.RopeScaling is { Type: "linear" } lin)
        {
            for (int i = 0; i < half; i++)
            {
                inv[i] /= lin.Factor;
            }
        }
        else if (config.RopeScaling is { Type: "llama3" } l3)
        {
            double lowWavelen = l3.OriginalMaxPositionEmbeddings / l3.LowFreqFactor;
            double highWavelen = l3.OriginalMaxPositionEmbeddings / l3.HighFreqFactor;
            for (int i = 0; i < half; i++)
            {
                double wavelen = 2 * Math.PI / inv[i];
                if (wavelen > lowWavelen)
                {
                    inv[i] /= l3.Factor;
                }
                else if (wavelen >= highWavelen)
                {
                    double smooth = (l3.OriginalMaxPositionEmbeddings / wavelen - l3.LowFreqFactor) / (l3.HighFreqFactor - l3.LowFreqFactor);
                    inv[i] = ((1 - smooth) * inv[i] / l3.Factor) + (smooth * inv[i]);
                }
            }
        }

        _invFreq = inv.Select(x => (float)x).ToArray();
    }

    /// <summary>Rotated dims per head.</summary>
    public int RotaryDim { get; }

    /// <summary>The inverse frequencies (RotaryDim / 2).</summary>
    public IReadOnlyList<float> InverseFrequencies => _invFreq;

    /// <summary>cos and sin (B, 1, T, RotaryDim) in <paramref name="dtype"/> for <paramref name="positionIds"/> (B, T).</summary>
    public (Tensor Cos, Tensor Sin) CosSin(Tensor positionIds, ScalarType dtype)
    {
        var inv = tensor(_invFreq, device: positionIds.device);                        // (rd/2)
        var freqs = positionIds.to(ScalarType.Float32).unsqueeze(-1) * inv;            // (B, T, rd/2)
        var emb = cat([freqs, freqs], -1);                                             // (B, T, rd)
        return (emb.cos().unsqueeze(1).to(dtype), emb.sin().unsqueeze(1).to(dtype));   // (B, 1, T, rd)
    }

    /// <summary>Applies the rotation to the first RotaryDim dims of <paramref name="x"/> (B, h, T, hd).</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long rd = cos.shape[^1];
        long hd = x.shape[^1];
        var xr = rd == hd ? x : x.narrow(-1, 0, rd);
        long half = rd / 2;
        var rotated = cat([xr.narrow(-1, half, rd - half).neg(), xr.narrow(-1, 0, half)], -1);
        var outRot = (xr * cos) + (rotated * sin);                                     // (B, h, T, rd)
        return rd == hd ? outRot : cat([outRot, x.narrow(-1, rd, hd - rd)], -1);       // (B, h, T, hd)
    }
}

/// <summary>Multi-head / grouped-query attention core shared by the architectures.</summary>
public static class AttentionOps
{
    /// <summary>
    /// Splits heads, applies RoPE (when the context has tables), appends to the cache, repeats KV heads for GQA and
    /// runs <c>scaled_dot_product_attention</c>. Inputs (B, T, heads×hd); returns (B, T, nh×hd).
    /// </summary>
    public static Tensor Attend(Tensor q, Tensor k, Tensor v, int numHeads, int numKvHeads, int headDim, AttentionContext ctx, int layer)
    {
        long b = q.shape[0], t = q.shape[1];
        var qh = q.view(b, t, numHeads, headDim).transpose(1, 2);      // (B, nh, T, hd)
        var kh = k.view(b, t, numKvHeads, headDim).transpose(1, 2);    // (B, nkv, T, hd)
        var vh = v.view(b, t, numKvHeads, headDim).transpose(1, 2);    // (B, nkv, T, hd)
        if (ctx.Cos is not null && ctx.Sin is not null)
        {
            qh = RotaryEmbedding.Apply(qh, ctx.Cos, ctx.Sin);
            kh = RotaryEmbedding.Apply(kh, ctx.Cos, ctx.Sin);
        }

        if (ctx.Cache is not null)
        {
            (kh, vh) = ctx.Cache.Append(layer, kh, vh);                // (B, nkv, S, hd)
        }

        if (numKvHeads != numHeads)
        {
            int rep = numHeads / numKvHeads;
            kh = kh.repeat_interleave(rep, dim: 1);                    // (B, nh, S, hd)
            vh = vh.repeat_interleave(rep, dim: 1);                    // (B, nh, S, hd)
        }

        var o = nn.functional.scaled_dot_product_attention(qh, kh, vh, ctx.Mask, 0.0, ctx.IsCausal); // (B, nh, T, hd)
        return o.transpose(1, 2).reshape(b, t, numHeads * headDim);   // (B, T, nh*hd)
    }
}
