using System.Globalization;
using DpoSharp.IO.Gguf;
using DpoSharp.Models;
using static TorchSharp.torch;

namespace DpoSharp.Export;

/// <summary>A tensor ready for GGUF: its GGUF name, its shape (outermost first, after any transpose) and its values
/// (fp32, row-major, after any permutation), read when the file is written.</summary>
/// <param name="Name">The GGUF name.</param>
/// <param name="Shape">The shape, outermost first.</param>
/// <param name="Values">Reads the values.</param>
public sealed record GgufSourceTensor(string Name, long[] Shape, Func<float[]> Values);

/// <summary>
/// How a model of one DpoSharp architecture is written as GGUF, following llama.cpp's <c>convert_hf_to_gguf.py</c>:
/// the <c>general.architecture</c> (llama and mistral → <c>llama</c>, qwen2 → <c>qwen2</c>, phi → <c>phi2</c>,
/// gpt2 → <c>gpt2</c>), the hyperparameter keys of that architecture and the tensors. Configurations llama.cpp's
/// graph for the architecture cannot run are refused here, before any weight is read.
/// </summary>
public sealed class GgufModelPlan
{
    private readonly ModelConfig _c;

    private GgufModelPlan(ModelConfig config, string architecture, int contextLength)
    {
        _c = config;
        Architecture = architecture;
        ContextLength = contextLength;
    }

    /// <summary><c>general.architecture</c>.</summary>
    public string Architecture { get; }

    /// <summary><c>{arch}.context_length</c>.</summary>
    public int ContextLength { get; }

    /// <summary>What the file cannot carry exactly.</summary>
    public List<string> Warnings { get; } = [];

    /// <summary>The plan for <paramref name="config"/> (read from <paramref name="source"/>, named in messages).</summary>
    /// <exception cref="DpoSharpException">A configuration llama.cpp's graph for the architecture does not compute
    /// (another activation, a RoPE scaling it has no form for).</exception>
    public static GgufModelPlan Create(ModelConfig config, string source)
    {
        ArgumentNullException.ThrowIfNull(config);
        string file = Path.Combine(source, "config.json");
        string arch = config.ModelType switch
        {
            "llama" or "mistral" => "llama",
            "qwen2" => "qwen2",
            "phi" => "phi2",
            "gpt2" => "gpt2",
            _ => throw new DpoSharpException($"{file}: model_type '{config.ModelType}' has no GGUF export; supported: {string.Join(", ", ModelConfig.SupportedModelTypes)}."),
        };
        bool swiglu = arch is "llama" or "qwen2";
        if (swiglu ? config.HiddenAct is not ("silu" or "swish") : config.HiddenAct is not ("gelu_new" or "gelu_pytorch_tanh" or "gelu_fast"))
        {
            throw new DpoSharpException($"{file}: activation '{config.HiddenAct}' cannot be expressed in GGUF for {config.ModelType}: llama.cpp's {arch} graph computes " +
                $"{(swiglu ? "silu" : "the tanh approximation of gelu (gelu_new)")}. Export a model trained with that activation.");
        }

        if (config.RopeScaling is { } rs && (rs.Type != "linear" && !(rs.Type == "llama3" && arch == "llama")))
        {
            throw new DpoSharpException($"{file}: rope_scaling '{rs.Type}' cannot be expressed in GGUF for {config.ModelType} (llama.cpp reads linear scaling for every architecture and llama3 scaling for llama).");
        }

        if (arch != "gpt2" && config.RotaryDim % 2 != 0)
        {
            throw new DpoSharpException($"{file}: {config.RotaryDim} rotary dimensions per head cannot be expressed in GGUF (RoPE rotates pairs; llama.cpp needs an even count).");
        }

        int context = config.MaxPositionEmbeddings;
        var plan = new GgufModelPlan(config, arch, context);
        if (config.SlidingWindow is int w && w < context)
        {
            // llama.cpp's llama and qwen2 graphs attend to the whole context; up to `w` tokens that equals the sliding
            // window, so the file declares that context length rather than one where the two would differ.
            plan = new GgufModelPlan(config, arch, w);
            plan.Warnings.Add(string.Create(CultureInfo.InvariantCulture,
                $"{file}: sliding_window {w} < max_position_embeddings {context}; llama.cpp's {arch} graph has no sliding window, so the GGUF file declares context_length {w} (where full attention equals the window)."));
        }

        return plan;
    }

    /// <summary>Writes the <c>{arch}.*</c> hyperparameter keys.</summary>
    public void WriteHyperparameters(GgufWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        string a = Architecture;
        w.AddUInt32($"{a}.context_length", (uint)ContextLength);
        w.AddUInt32($"{a}.embedding_length", (uint)_c.HiddenSize);
        w.AddUInt32($"{a}.block_count", (uint)_c.NumLayers);
        w.AddUInt32($"{a}.feed_forward_length", (uint)_c.IntermediateSize);
        w.AddUInt32($"{a}.attention.head_count", (uint)_c.NumHeads);
        if (a != "gpt2")
        {
            w.AddUInt32($"{a}.attention.head_count_kv", (uint)_c.NumKvHeads);
            w.AddFloat32($"{a}.rope.freq_base", (float)_c.RopeTheta);
            w.AddUInt32($"{a}.rope.dimension_count", (uint)_c.RotaryDim);
            if (_c.HeadDim * _c.NumHeads != _c.HiddenSize)
            {
                w.AddUInt32($"{a}.attention.key_length", (uint)_c.HeadDim);
                w.AddUInt32($"{a}.attention.value_length", (uint)_c.HeadDim);
            }

            if (_c.RopeScaling is { Type: "linear" } rs)
            {
                w.AddString($"{a}.rope.scaling.type", "linear");
                w.AddFloat32($"{a}.rope.scaling.factor", (float)rs.Factor);
            }
        }

        if (a is "llama" or "qwen2")
        {
            w.AddFloat32($"{a}.attention.layer_norm_rms_epsilon", (float)_c.NormEps);
        }
        else
        {
            w.AddFloat32($"{a}.attention.layer_norm_epsilon", (float)_c.NormEps);
        }

        if (a == "llama")
        {
            w.AddUInt32("llama.vocab_size", (uint)_c.VocabSize);
        }
    }

    /// <summary>
    /// The GGUF tensors of a model's Hugging Face tensors (<see cref="CausalLMBase.TensorsToSave"/>): renamed,
    /// GPT-2 Conv1D weights transposed, Llama Q/K rows permuted; for phi2 with tied embeddings an explicit
    /// <c>output</c> (llama.cpp's phi2 graph requires one); the llama3 RoPE factors as <c>rope_freqs.weight</c>.
    /// </summary>
    /// <exception cref="DpoSharpException">A tensor GGUF has no name for.</exception>
    public IReadOnlyList<GgufSourceTensor> MapTensors(IReadOnlyList<(string Name, Tensor Tensor)> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var result = new List<GgufSourceTensor>();
        foreach (var (name, tensor) in tensors)
        {
            var map = GgufTensorNames.Map(_c.ModelType, name, _c.NumHeads, _c.NumKvHeads)
                ?? throw new DpoSharpException($"tensor '{name}' of this {_c.ModelType} model has no GGUF name; the model cannot be exported.");
            var t = tensor;
            long[] shape = map.Transpose ? [t.shape[1], t.shape[0]] : t.shape;
            result.Add(new GgufSourceTensor(map.GgufName, shape, () =>
            {
                var values = Read(t, map.Transpose);
                return map.PermuteHeads > 0 ? GgufTensorNames.PermuteRows(values, map.PermuteHeads, shape.Length > 1 ? shape[1] : 1) : values;
            }));
        }

        if (Architecture == "phi2" && !result.Any(r => r.Name == "output.weight"))
        {
            var embed = result.First(r => r.Name == "token_embd.weight");
            result.Add(embed with { Name = "output.weight" });
            if (!result.Any(r => r.Name == "output.bias"))
            {
                result.Add(new GgufSourceTensor("output.bias", [_c.VocabSize], () => new float[_c.VocabSize]));
            }
        }

        if (_c.RopeScaling is { Type: "llama3" } rs)
        {
            var factors = Llama3RopeFactors(_c.HeadDim, _c.RopeTheta, rs.Factor, rs.LowFreqFactor, rs.HighFreqFactor, rs.OriginalMaxPositionEmbeddings);
            result.Add(new GgufSourceTensor("rope_freqs.weight", [factors.Length], () => factors));
        }

        return result;
    }

    /// <summary>
    /// The per-frequency divisors llama.cpp applies for llama3 RoPE scaling (<c>rope_freqs.weight</c>, head_dim / 2
    /// values): 1 for wavelengths below original/high_freq_factor, <paramref name="factor"/> above
    /// original/low_freq_factor, and in between 1 / ((1 − s)/factor + s) with s = (original/λ − low)/(high − low).
    /// </summary>
    public static float[] Llama3RopeFactors(int headDim, double theta, double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions)
    {
        var result = new float[headDim / 2];
        double lowWavelen = originalMaxPositions / lowFreqFactor;
        double highWavelen = originalMaxPositions / highFreqFactor;
        for (int i = 0; i < result.Length; i++)
        {
            float freq = (float)(1.0 / Math.Pow(theta, 2.0 * i / headDim));
            double wavelen = 2 * Math.PI / freq;
            double smooth = ((originalMaxPositions / wavelen) - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
            result[i] = wavelen < highWavelen ? 1f
                : wavelen > lowWavelen ? (float)factor
                : (float)(1 / (((1 - smooth) / factor) + smooth));
        }

        return result;
    }

    private static float[] Read(Tensor t, bool transpose)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var x = t.detach().to(ScalarType.Float32).cpu();
        if (transpose)
        {
            x = x.t(); // (out, in)
        }

        return x.contiguous().data<float>().ToArray();
    }
}
