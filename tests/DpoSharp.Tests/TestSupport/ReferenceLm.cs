using System.Text.Json.Nodes;
using DpoSharp.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.TestSupport;

/// <summary>
/// An independent, deliberately plain re-implementation of the five architectures for one unpadded sequence,
/// in float64, straight from the checkpoint's tensors and config.json (no DpoSharp model code): explicit
/// per-head softmax attention with a hand-built causal mask, explicit norms, RoPE from the formulas.
/// </summary>
public static class ReferenceLm
{
    /// <summary>Reads every tensor of a checkpoint directory as float64.</summary>
    public static Dictionary<string, Tensor> Weights(string dir)
    {
        using var ck = SafeTensorsCheckpoint.Open(dir);
        return ck.Names.ToDictionary(n => n, n => ck.Read(n).to(ScalarType.Float64));
    }

    /// <summary>Logits (T, V) float64 for <paramref name="ids"/> at positions 0..T-1.</summary>
    public static Tensor Logits(JsonObject cfg, Dictionary<string, Tensor> w, long[] ids)
    {
        string type = cfg["model_type"]!.GetValue<string>();
        return type == "gpt2" ? Gpt2(cfg, w, ids) : type == "phi" ? Phi(cfg, w, ids) : Llama(cfg, w, ids);
    }

    private static Tensor W(Dictionary<string, Tensor> w, string key) => w[key];

    private static int I(JsonObject c, string k) => c[k]!.GetValue<int>();

    private static double D(JsonObject c, string k, double dflt) => c[k] is null ? dflt : c[k]!.GetValue<double>();

    private static Tensor LayerNorm(Tensor x, Tensor g, Tensor b, double eps)
    {
        var mean = x.mean([-1], keepdim: true);
        var var = (x - mean).pow(2).mean([-1], keepdim: true);
        return ((x - mean) / (var + eps).sqrt() * g) + b;
    }

    private static Tensor RmsNorm(Tensor x, Tensor g, double eps) => x / (x.pow(2).mean([-1], keepdim: true) + eps).sqrt() * g;

    private static Tensor GeluTanh(Tensor x) => 0.5 * x * (1.0 + (Math.Sqrt(2.0 / Math.PI) * (x + (0.044715 * x.pow(3)))).tanh());

    private static Tensor Silu(Tensor x) => x / (1.0 + (-x).exp());

    private static Tensor Lin(Tensor x, Dictionary<string, Tensor> w, string name)
    {
        var y = x.matmul(W(w, name + ".weight").t());
        return w.TryGetValue(name + ".bias", out var b) ? y + b : y;
    }

    /// <summary>Softmax attention for one head: q (T, hd), k/v (T, hd); window: keys with q-k &gt;= window are masked.</summary>
    private static Tensor Head(Tensor q, Tensor k, Tensor v, int? window)
    {
        long t = q.shape[0];
        var scores = q.matmul(k.t()) / Math.Sqrt(q.shape[1]);
        var mask = new double[t * t];
        for (long i = 0; i < t; i++)
        {
            for (long j = 0; j < t; j++)
            {
                bool ok = j <= i && (window is null || i - j < window);
                mask[(i * t) + j] = ok ? 0 : double.NegativeInfinity;
            }
        }

        scores += tensor(mask, ScalarType.Float64).view(t, t);
        var e = (scores - scores.max(-1, keepdim: true).values).exp();
        return (e / e.sum(-1, keepdim: true)).matmul(v);
    }

    /// <summary>Rotate-half RoPE on the first <paramref name="rd"/> dims of x (T, hd).</summary>
    private static Tensor Rope(Tensor x, double[] invFreq, int rd)
    {
        long t = x.shape[0];
        int half = rd / 2;
        var cos = new double[t * half];
        var sin = new double[t * half];
        for (int p = 0; p < t; p++)
        {
            for (int i = 0; i < half; i++)
            {
                cos[(p * half) + i] = Math.Cos(p * invFreq[i]);
                sin[(p * half) + i] = Math.Sin(p * invFreq[i]);
            }
        }

        var c = tensor(cos, ScalarType.Float64).view(t, half);
        var s = tensor(sin, ScalarType.Float64).view(t, half);
        var x1 = x[.., ..half];
        var x2 = x[.., half..rd];
        var o1 = (x1 * c) - (x2 * s);
        var o2 = (x2 * c) + (x1 * s);
        return cat([o1, o2, x[.., rd..]], 1);
    }

    /// <summary>Inverse frequencies with optional llama3 scaling, written from the published formula.</summary>
    public static double[] InvFreq(JsonObject cfg, int rd)
    {
        double theta = D(cfg, "rope_theta", 10000);
        var inv = Enumerable.Range(0, rd / 2).Select(i => 1.0 / Math.Pow(theta, 2.0 * i / rd)).ToArray();
        if (cfg["rope_scaling"] is JsonObject rs && rs["rope_type"]?.GetValue<string>() == "llama3")
        {
            double factor = rs["factor"]!.GetValue<double>(), lo = rs["low_freq_factor"]!.GetValue<double>(), hi = rs["high_freq_factor"]!.GetValue<double>();
            double old = rs["original_max_position_embeddings"]!.GetValue<double>();
            for (int i = 0; i < inv.Length; i++)
            {
                double wl = 2 * Math.PI / inv[i];
                if (wl < old / hi)
                {
                    continue; // high frequency: unchanged
                }

                if (wl > old / lo)
                {
                    inv[i] /= factor; // low frequency: scaled
                    continue;
                }

                double s = ((old / wl) - lo) / (hi - lo);
                inv[i] = ((1 - s) * inv[i] / factor) + (s * inv[i]);
            }
        }

        return inv;
    }

    private static Tensor Gpt2(JsonObject c, Dictionary<string, Tensor> w, long[] ids)
    {
        string p = w.ContainsKey("transformer.wte.weight") ? "transformer." : "";
        int d = I(c, "n_embd"), nh = I(c, "n_head"), hd = d / nh, layers = I(c, "n_layer");
        double eps = D(c, "layer_norm_epsilon", 1e-5);
        var idx = tensor(ids);
        var x = W(w, p + "wte.weight").index_select(0, idx) + W(w, p + "wpe.weight")[..ids.Length];
        for (int l = 0; l < layers; l++)
        {
            string b = $"{p}h.{l}.";
            var h = LayerNorm(x, W(w, b + "ln_1.weight"), W(w, b + "ln_1.bias"), eps);
            var qkv = h.matmul(W(w, b + "attn.c_attn.weight")) + W(w, b + "attn.c_attn.bias"); // Conv1D: [in, out]
            var heads = new List<Tensor>();
            for (int i = 0; i < nh; i++)
            {
                heads.Add(Head(qkv[.., (i * hd)..((i + 1) * hd)], qkv[.., (d + (i * hd))..(d + ((i + 1) * hd))], qkv[.., ((2 * d) + (i * hd))..((2 * d) + ((i + 1) * hd))], null));
            }

            x = x + cat(heads, 1).matmul(W(w, b + "attn.c_proj.weight")) + W(w, b + "attn.c_proj.bias");
            h = LayerNorm(x, W(w, b + "ln_2.weight"), W(w, b + "ln_2.bias"), eps);
            var m = GeluTanh(h.matmul(W(w, b + "mlp.c_fc.weight")) + W(w, b + "mlp.c_fc.bias"));
            x = x + m.matmul(W(w, b + "mlp.c_proj.weight")) + W(w, b + "mlp.c_proj.bias");
        }

        x = LayerNorm(x, W(w, p + "ln_f.weight"), W(w, p + "ln_f.bias"), eps);
        return x.matmul(W(w, p + "wte.weight").t());
    }

    private static Tensor Attention(JsonObject c, Dictionary<string, Tensor> w, string b, Tensor h, string outName, int rd, int? window)
    {
        int d = I(c, "hidden_size"), nh = I(c, "num_attention_heads");
        int nkv = c["num_key_value_heads"] is null ? nh : I(c, "num_key_value_heads");
        int hd = d / nh;
        var inv = InvFreq(c, rd);
        var q = Lin(h, w, b + "self_attn.q_proj");
        var k = Lin(h, w, b + "self_attn.k_proj");
        var v = Lin(h, w, b + "self_attn.v_proj");
        var heads = new List<Tensor>();
        for (int i = 0; i < nh; i++)
        {
            int kvh = i / (nh / nkv);
            var qi = Rope(q[.., (i * hd)..((i + 1) * hd)], inv, rd);
            var ki = Rope(k[.., (kvh * hd)..((kvh + 1) * hd)], inv, rd);
            heads.Add(Head(qi, ki, v[.., (kvh * hd)..((kvh + 1) * hd)], window));
        }

        return Lin(cat(heads, 1), w, b + "self_attn." + outName);
    }

    private static Tensor Llama(JsonObject c, Dictionary<string, Tensor> w, long[] ids)
    {
        int d = I(c, "hidden_size"), nh = I(c, "num_attention_heads"), layers = I(c, "num_hidden_layers");
        double eps = D(c, "rms_norm_eps", 1e-6);
        int? window = c["model_type"]!.GetValue<string>() == "mistral" && c["sliding_window"] is not null ? I(c, "sliding_window") : null;
        var x = W(w, "model.embed_tokens.weight").index_select(0, tensor(ids));
        for (int l = 0; l < layers; l++)
        {
            string b = $"model.layers.{l}.";
            x = x + Attention(c, w, b, RmsNorm(x, W(w, b + "input_layernorm.weight"), eps), "o_proj", d / nh, window);
            var h = RmsNorm(x, W(w, b + "post_attention_layernorm.weight"), eps);
            x = x + Lin(Silu(Lin(h, w, b + "mlp.gate_proj")) * Lin(h, w, b + "mlp.up_proj"), w, b + "mlp.down_proj");
        }

        x = RmsNorm(x, W(w, "model.norm.weight"), eps);
        var head = w.TryGetValue("lm_head.weight", out var lm) ? lm : W(w, "model.embed_tokens.weight");
        return x.matmul(head.t());
    }

    private static Tensor Phi(JsonObject c, Dictionary<string, Tensor> w, long[] ids)
    {
        int d = I(c, "hidden_size"), nh = I(c, "num_attention_heads"), layers = I(c, "num_hidden_layers");
        double eps = D(c, "layer_norm_eps", 1e-5);
        int rd = (int)((d / nh) * D(c, "partial_rotary_factor", 0.5));
        var x = W(w, "model.embed_tokens.weight").index_select(0, tensor(ids));
        for (int l = 0; l < layers; l++)
        {
            string b = $"model.layers.{l}.";
            var h = LayerNorm(x, W(w, b + "input_layernorm.weight"), W(w, b + "input_layernorm.bias"), eps);
            var attn = Attention(c, w, b, h, "dense", rd, null);
            var mlp = Lin(GeluTanh(Lin(h, w, b + "mlp.fc1")), w, b + "mlp.fc2");
            x = x + attn + mlp;
        }

        x = LayerNorm(x, W(w, "model.final_layernorm.weight"), W(w, "model.final_layernorm.bias"), eps);
        return Lin(x, w, "lm_head");
    }
}
