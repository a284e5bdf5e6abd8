using System.Text.RegularExpressions;
using DpoSharp.IO.Gguf;

namespace DpoSharp.Export;

/// <summary>How one Hugging Face tensor becomes a GGUF tensor.</summary>
/// <param name="GgufName">The GGUF name, e.g. <c>blk.0.attn_q.weight</c>.</param>
/// <param name="Transpose">GPT-2 <c>Conv1D</c> weights are stored (in, out); GGUF wants (out, in).</param>
/// <param name="PermuteHeads">Rows to permute for llama.cpp's interleaved RoPE (<see cref="GgufTensorNames.PermuteRows"/>)
/// in this many heads, or 0.</param>
public sealed record GgufTensorMapping(string GgufName, bool Transpose = false, int PermuteHeads = 0);

/// <summary>
/// Hugging Face tensor names → GGUF tensor names per architecture, as llama.cpp's <c>gguf-py</c>
/// (<c>tensor_mapping.py</c>) maps them, with the converter's per-architecture changes: the Q/K row permutation of
/// Llama-family models (llama, mistral; not qwen2 or phi, whose RoPE llama.cpp applies NeoX-style) and the
/// transposed GPT-2 <c>Conv1D</c> weights.
/// </summary>
public static partial class GgufTensorNames
{
    /// <summary>
    /// The mapping of <paramref name="hfName"/> in a model of <paramref name="modelType"/>, or null for a tensor
    /// GGUF does not hold.
    /// </summary>
    /// <param name="modelType">gpt2, llama, mistral, qwen2 or phi.</param>
    /// <param name="hfName">The Hugging Face name, e.g. <c>model.layers.0.self_attn.q_proj.weight</c>.</param>
    /// <param name="numHeads">Attention heads (the Q permutation).</param>
    /// <param name="numKvHeads">Key/value heads (the K permutation).</param>
    public static GgufTensorMapping? Map(string modelType, string hfName, int numHeads, int numKvHeads)
    {
        ArgumentNullException.ThrowIfNull(hfName);
        if (modelType == "gpt2")
        {
            return MapGpt2(hfName);
        }

        bool permute = modelType is "llama" or "mistral";
        string[] parts = hfName.Split('.');
        string suffix = parts[^1];
        switch (hfName)
        {
            case "model.embed_tokens.weight": return new("token_embd.weight");
            case "model.norm.weight": return new("output_norm.weight");
            case "model.final_layernorm.weight" or "model.final_layernorm.bias": return new("output_norm." + suffix);
            case "lm_head.weight" or "lm_head.bias": return new("output." + suffix);
        }

        var m = LayerName().Match(hfName);
        if (!m.Success)
        {
            return null;
        }

        string blk = "blk." + m.Groups[1].Value + ".";
        string module = m.Groups[2].Value;
        string name = module switch
        {
            "input_layernorm" => "attn_norm",
            "post_attention_layernorm" => "ffn_norm",
            "self_attn.q_proj" => "attn_q",
            "self_attn.k_proj" => "attn_k",
            "self_attn.v_proj" => "attn_v",
            "self_attn.o_proj" or "self_attn.dense" => "attn_output",
            "mlp.gate_proj" => "ffn_gate",
            "mlp.up_proj" or "mlp.fc1" => "ffn_up",
            "mlp.down_proj" or "mlp.fc2" => "ffn_down",
            _ => "",
        };
        if (name.Length == 0)
        {
            return null;
        }

        int heads = !permute ? 0 : name == "attn_q" ? numHeads : name == "attn_k" ? numKvHeads : 0;
        return new(blk + name + "." + m.Groups[3].Value, PermuteHeads: heads);
    }

    private static GgufTensorMapping? MapGpt2(string hfName)
    {
        string name = hfName.StartsWith("transformer.", StringComparison.Ordinal) ? hfName["transformer.".Length..] : hfName;
        switch (name)
        {
            case "wte.weight": return new("token_embd.weight");
            case "wpe.weight": return new("position_embd.weight");
            case "ln_f.weight" or "ln_f.bias": return new("output_norm." + name[5..]);
            case "lm_head.weight": return new("output.weight");
        }

        var m = Gpt2LayerName().Match(name);
        if (!m.Success)
        {
            return null;
        }

        string leaf = m.Groups[3].Value;
        string? mapped = m.Groups[2].Value switch
        {
            "ln_1" => "attn_norm",
            "attn.c_attn" => "attn_qkv",
            "attn.c_proj" => "attn_output",
            "ln_2" => "ffn_norm",
            "mlp.c_fc" => "ffn_up",
            "mlp.c_proj" => "ffn_down",
            _ => null,
        };
        bool conv1d = mapped is "attn_qkv" or "attn_output" or "ffn_up" or "ffn_down";
        return mapped is null ? null : new($"blk.{m.Groups[1].Value}.{mapped}.{leaf}", Transpose: conv1d && leaf == "weight");
    }

    /// <summary>
    /// The converter's Llama Q/K permutation: within each of <paramref name="heads"/> heads of d rows, row 2i + a of
    /// the result is row a·d/2 + i of <paramref name="values"/> (a ∈ {0, 1}), turning Hugging Face's rotate-half
    /// RoPE layout (pairs i, i + d/2) into llama.cpp's interleaved one (pairs 2i, 2i + 1). Rows are
    /// <paramref name="columns"/> values long (1 for a bias).
    /// </summary>
    public static float[] PermuteRows(ReadOnlySpan<float> values, int heads, long columns)
    {
        long rows = values.Length / columns;
        if (heads <= 0 || rows % heads != 0 || rows / heads % 2 != 0 || rows * columns != values.Length)
        {
            throw new ArgumentException($"cannot permute {rows} rows in {heads} heads of an even size");
        }

        long d = rows / heads;
        var result = new float[values.Length];
        for (long h = 0; h < heads; h++)
        {
            for (long i = 0; i < d / 2; i++)
            {
                for (long a = 0; a < 2; a++)
                {
                    long dst = (h * d) + (2 * i) + a;
                    long src = (h * d) + (a * d / 2) + i;
                    values.Slice((int)(src * columns), (int)columns).CopyTo(result.AsSpan((int)(dst * columns), (int)columns));
                }
            }
        }

        return result;
    }

    [GeneratedRegex(@"^model\.layers\.(\d+)\.(.+)\.(weight|bias)$")]
    private static partial Regex LayerName();

    [GeneratedRegex(@"^h\.(\d+)\.(.+)\.(weight|bias)$")]
    private static partial Regex Gpt2LayerName();
}
