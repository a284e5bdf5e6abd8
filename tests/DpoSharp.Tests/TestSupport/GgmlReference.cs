using DpoSharp.Export;
using DpoSharp.IO.Gguf;
using DpoSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.TestSupport;

/// <summary>
/// Makes DpoSharp's own forward pass compute what llama.cpp's CPU backend computes from a GGUF file, written from
/// ggml's documented behaviour (not from the exporter): weight matrices hold the values stored in the file (f16-rounded,
/// or Q8_0: per 32 values along the input dimension, d = f16(max|w| / 127), w = d · round(w / d)); the activations
/// entering every matrix product are converted to the weight's <c>vec_dot_type</c> (f16 for f16 weights, Q8_0 blocks
/// for Q8_0 weights); and gelu is ggml's table: f16(gelu(f16(x))). Hooks on the model's modules do the activation
/// rounding; the weights are overwritten in place.
/// </summary>
internal static class GgmlReference
{
    /// <summary>Applies the file's storage and llama.cpp's arithmetic for <paramref name="outType"/> to <paramref name="model"/>.</summary>
    public static void Apply(CausalLMBase model, GgufOutType outType)
    {
        string type = model.Config.ModelType;
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        string? up = type switch { "gpt2" => "mlp.c_fc", "phi" => "mlp.fc1", _ => null };
        string? down = type switch { "gpt2" => "mlp.c_proj", "phi" => "mlp.fc2", _ => null };
        foreach (var (name, module) in modules)
        {
            if (module is not nn.Module<Tensor, Tensor> m)
            {
                continue;
            }

            // ggml's gelu: x → f16 → table of f16(gelu) → f32 (registered first: it precedes the matmul's own rounding).
            if (up is not null && name.EndsWith("." + up, StringComparison.Ordinal))
            {
                m.register_forward_hook((_, _, y) => RoundF16(y));
            }

            if (down is not null && name.EndsWith("." + down, StringComparison.Ordinal))
            {
                m.register_forward_pre_hook((_, x) => RoundF16(x));
            }
        }

        using (no_grad())
        {
            foreach (var (name, p) in model.named_parameters())
            {
                bool conv1d = type == "gpt2" && name.EndsWith(".weight", StringComparison.Ordinal) && p.dim() == 2 && !name.Contains("wte", StringComparison.Ordinal) && !name.Contains("wpe", StringComparison.Ordinal);
                var gguf = GgufTensorNames.Map(type, name, model.Config.NumHeads, model.Config.NumKvHeads)!.GgufName;
                long[] shape = conv1d ? [p.shape[1], p.shape[0]] : p.shape;
                var stored = GgufExporter.StoredType(gguf, shape, outType);
                if (stored == GgmlType.F32)
                {
                    continue;
                }

                var w = conv1d ? p.t() : p.alias(); // rows along the input dimension
                var rounded = stored == GgmlType.F16 ? RoundF16(w) : QuantizeQ8_0(w);
                p.copy_(conv1d ? rounded.t() : rounded); // an embedding lookup reads these rounded rows too
            }
        }

        if (outType == GgufOutType.F32)
        {
            return;
        }

        Func<Tensor, Tensor> toVecDotType = outType == GgufOutType.F16 ? RoundF16 : QuantizeQ8_0;
        foreach (var (name, module) in modules)
        {
            if (module is DpoSharp.Modules.Linear or DpoSharp.Modules.Conv1D)
            {
                ((nn.Module<Tensor, Tensor>)module).register_forward_pre_hook((_, x) => toVecDotType(x));
            }
        }

        if (model.Config.TieWordEmbeddings)
        {
            // The tied output product is a functional linear; its input is the final norm's output.
            string norm = type switch { "gpt2" => "transformer.ln_f", "phi" => "model.final_layernorm", _ => "model.norm" };
            ((nn.Module<Tensor, Tensor>)modules[norm]).register_forward_hook((_, _, y) => toVecDotType(y));
        }
    }

    /// <summary>x rounded to f16 (nearest even) and back.</summary>
    public static Tensor RoundF16(Tensor x) => x.to(ScalarType.Float16).to(x.dtype);

    /// <summary>x (…, n) quantized to Q8_0 blocks of 32 along the last dimension and dequantized.</summary>
    public static Tensor QuantizeQ8_0(Tensor x)
    {
        var shape = x.shape;
        var blocks = x.reshape(-1, 32); // (N, 32)
        var d = blocks.abs().amax([1], keepdim: true) / 127f; // (N, 1)
        var id = where(d.eq(0), zeros_like(d), d.reciprocal());
        var q = (blocks * id).abs().add(0.5).floor() * (blocks * id).sign(); // round half away from zero
        return (q * RoundF16(d)).reshape(shape);
    }
}
