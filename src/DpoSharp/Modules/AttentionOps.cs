using static TorchSharp.torch;

namespace DpoSharp.Modules;

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

        if (ctx.SequenceGather is { } gather && ctx.SequenceScatter is { } scatter)
        {
            // Each output sequence as its own row (its shared prompt and itself): the causal fast path, no mask.
            long s = gather.shape[0], tv = gather.shape[1];
            var flat = gather.reshape(-1);                                         // (S·Tv)
            Tensor Rows(Tensor x, long heads) => x.transpose(1, 2).reshape(b * t, heads * headDim)
                .index_select(0, flat).view(s, tv, heads, headDim).transpose(1, 2); // (S, heads, Tv, hd)
            qh = Rows(qh, numHeads);
            kh = Rows(kh, numKvHeads);
            vh = Rows(vh, numKvHeads);
            if (numKvHeads != numHeads)
            {
                int r = numHeads / numKvHeads;
                kh = kh.repeat_interleave(r, dim: 1);                              // (S, nh, Tv, hd)
                vh = vh.repeat_interleave(r, dim: 1);                              // (S, nh, Tv, hd)
            }

            var os = nn.functional.scaled_dot_product_attention(qh, kh, vh, null, 0.0, tv > 1); // (S, nh, Tv, hd)
            return os.transpose(1, 2).reshape(s * tv, numHeads * headDim)
                .index_select(0, scatter).view(b, t, numHeads * headDim);          // (B, T, nh*hd)
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
