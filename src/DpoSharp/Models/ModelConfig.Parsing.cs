using System.Text.Json;
using System.Text.Json.Nodes;
using DpoSharp.Modules;

namespace DpoSharp.Models;

public sealed partial class ModelConfig
{
    /// <summary>Largest size, count or length a config.json may declare (dimensions, vocabulary, layers, positions):
    /// a bound on what the model allocates from the file.</summary>
    public const int MaxDimension = 1 << 24;

    /// <summary>The <c>model_type</c> values DpoSharp runs.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["gpt2", "llama", "mistral", "qwen2", "phi"];

    /// <summary><c>architectures</c> (e.g. LlamaForCausalLM), empty when absent.</summary>
    public IReadOnlyList<string> Architectures { get; init; } = [];

    /// <summary>Hidden size (<c>hidden_size</c> / gpt2 <c>n_embd</c>).</summary>
    public int HiddenSize { get; init; }

    /// <summary>Number of decoder layers (<c>num_hidden_layers</c> / <c>n_layer</c>).</summary>
    public int NumLayers { get; init; }

    /// <summary>Attention heads (<c>num_attention_heads</c> / <c>n_head</c>).</summary>
    public int NumHeads { get; init; }

    /// <summary>Key/value heads (<c>num_key_value_heads</c>; equals <see cref="NumHeads"/> without GQA).</summary>
    public int NumKvHeads { get; init; }

    /// <summary>Per-head size (<c>head_dim</c>, default hidden/heads).</summary>
    public int HeadDim { get; init; }

    /// <summary>MLP inner size (<c>intermediate_size</c> / gpt2 <c>n_inner</c>, default 4 × hidden).</summary>
    public int IntermediateSize { get; init; }

    /// <summary>Maximum positions (<c>max_position_embeddings</c> / <c>n_positions</c>).</summary>
    public int MaxPositionEmbeddings { get; init; }

    /// <summary>RoPE base (<c>rope_theta</c>, default 10000). Unused by gpt2.</summary>
    public double RopeTheta { get; init; } = 10000;

    /// <summary>RoPE scaling, or null.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary>Fraction of each head's dims that are rotated (<c>partial_rotary_factor</c>, phi; 1 otherwise).</summary>
    public double PartialRotaryFactor { get; init; } = 1.0;

    /// <summary>Norm epsilon (<c>rms_norm_eps</c> / <c>layer_norm_eps</c> / <c>layer_norm_epsilon</c>).</summary>
    public double NormEps { get; init; } = 1e-5;

    /// <summary>Whether lm_head shares the token embedding (<c>tie_word_embeddings</c>; default true for gpt2, false otherwise).</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary>Activation (<c>hidden_act</c> / <c>activation_function</c>): silu, gelu_new, gelu_pytorch_tanh, gelu.</summary>
    public string HiddenAct { get; init; } = "silu";

    /// <summary>
    /// Biases on q/k/v (<c>attention_bias</c>, llama/mistral; always for qwen2, phi and gpt2). The output projection's
    /// bias is <see cref="AttentionOutputBias"/>.
    /// </summary>
    public bool AttentionBias { get; init; }

    /// <summary>
    /// Bias on the attention output projection (<c>o_proj</c> / <c>dense</c> / <c>c_proj</c>): <c>attention_bias</c>
    /// for llama/mistral, always for phi and gpt2, never for qwen2 (which has q/k/v biases only).
    /// </summary>
    public bool AttentionOutputBias { get; init; }

    /// <summary>Biases on the MLP projections (<c>mlp_bias</c>, llama).</summary>
    public bool MlpBias { get; init; }

    /// <summary>Sliding-window attention size (mistral <c>sliding_window</c>; qwen2 only with <c>use_sliding_window</c>), or null.</summary>
    public int? SlidingWindow { get; init; }

    /// <summary><c>bos_token_id</c>, or null.</summary>
    public int? BosTokenId { get; init; }

    /// <summary><c>eos_token_id</c> (a list in Llama-3 configs); empty when absent.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary><c>pad_token_id</c>, or null.</summary>
    public int? PadTokenId { get; init; }

    /// <summary>Reads and parses <c>config.json</c> in <paramref name="directory"/> (or the file itself).</summary>
    /// <exception cref="DpoSharpException">Missing file, invalid JSON, unknown model_type, missing/invalid fields.</exception>
    public static ModelConfig Load(string directory)
    {
        var path = Directory.Exists(directory) ? Path.Combine(directory, "config.json") : directory;
        if (!File.Exists(path))
        {
            throw new DpoSharpException($"{path}: not found. --model must be a Hugging Face model directory holding config.json and safetensors weights.");
        }

        return Parse(IO.JsonFile.ParseObject(path), path);
    }

    /// <summary>Parses a config.json object; <paramref name="source"/> names it in error messages.</summary>
    public static ModelConfig Parse(JsonObject raw, string source = "config.json")
    {
        var r = new Reader(raw, source);
        string modelType = r.String("model_type") ?? InferType(raw, source);
        var archs = raw["architectures"] is JsonArray a ? a.Select(n => IO.JsonFile.Value<string>(n, source)).ToArray() : [];
        if (!SupportedModelTypes.Contains(modelType))
        {
            throw new DpoSharpException($"{source}: model_type '{modelType}' is not supported. Supported: {string.Join(", ", SupportedModelTypes)}.");
        }

        if (modelType == "gpt2")
        {
            int hidden = r.RequiredInt("n_embd");
            int heads = r.RequiredInt("n_head");
            r.CheckDivisible(hidden, heads, "n_embd", "n_head");
            string act = r.String("activation_function") ?? "gelu_new";
            return new ModelConfig
            {
                ModelType = modelType,
                Architectures = archs,
                VocabSize = r.RequiredInt("vocab_size"),
                HiddenSize = hidden,
                NumLayers = r.RequiredInt("n_layer"),
                NumHeads = heads,
                NumKvHeads = heads,
                HeadDim = hidden / heads,
                IntermediateSize = r.Int("n_inner") ?? 4 * hidden,
                MaxPositionEmbeddings = r.RequiredInt("n_positions"),
                NormEps = r.Double("layer_norm_epsilon") ?? 1e-5,
                TieWordEmbeddings = r.Bool("tie_word_embeddings") ?? true,
                HiddenAct = CheckAct(act, source, "activation_function"),
                AttentionBias = true,
                AttentionOutputBias = true,
                MlpBias = true,
                BosTokenId = r.Int("bos_token_id"),
                EosTokenIds = r.IntList("eos_token_id"),
                PadTokenId = r.Int("pad_token_id"),
                Raw = raw,
            };
        }

        {
            int hidden = r.RequiredInt("hidden_size");
            int heads = r.RequiredInt("num_attention_heads");
            int kvHeads = r.Int("num_key_value_heads") ?? heads;
            int headDim = r.Int("head_dim") ?? hidden / heads;
            if (r.Int("head_dim") is null)
            {
                r.CheckDivisible(hidden, heads, "hidden_size", "num_attention_heads");
            }

            r.CheckDivisible(heads, kvHeads, "num_attention_heads", "num_key_value_heads");
            bool isPhi = modelType == "phi";
            if (isPhi && r.Bool("qk_layernorm") == true)
            {
                throw new DpoSharpException($"{source}: qk_layernorm=true is not supported for phi.");
            }

            int? window = modelType switch
            {
                "mistral" => r.Int("sliding_window"),
                "qwen2" when r.Bool("use_sliding_window") == true => r.Int("sliding_window"),
                _ => null,
            };
            return new ModelConfig
            {
                ModelType = modelType,
                Architectures = archs,
                VocabSize = r.RequiredInt("vocab_size"),
                HiddenSize = hidden,
                NumLayers = r.RequiredInt("num_hidden_layers"),
                NumHeads = heads,
                NumKvHeads = kvHeads,
                HeadDim = headDim,
                IntermediateSize = r.RequiredInt("intermediate_size"),
                MaxPositionEmbeddings = r.Int("max_position_embeddings") ?? 2048,
                RopeTheta = r.Double("rope_theta") ?? 10000,
                RopeScaling = ParseRopeScaling(raw, source),
                PartialRotaryFactor = isPhi ? r.Double("partial_rotary_factor") ?? 0.5 : 1.0,
                NormEps = (isPhi ? r.Double("layer_norm_eps") : r.Double("rms_norm_eps")) ?? (isPhi ? 1e-5 : 1e-6),
                TieWordEmbeddings = r.Bool("tie_word_embeddings") ?? false,
                HiddenAct = CheckAct(r.String("hidden_act") ?? (isPhi ? "gelu_new" : "silu"), source, "hidden_act"),
                AttentionBias = isPhi || modelType == "qwen2" || (r.Bool("attention_bias") ?? false),
                AttentionOutputBias = isPhi || (modelType != "qwen2" && (r.Bool("attention_bias") ?? false)),
                MlpBias = isPhi || (r.Bool("mlp_bias") ?? false),
                SlidingWindow = window,
                BosTokenId = r.Int("bos_token_id"),
                EosTokenIds = r.IntList("eos_token_id"),
                PadTokenId = r.Int("pad_token_id"),
                Raw = raw,
            };
        }
    }

    /// <summary>Number of rotated dims per head (<see cref="HeadDim"/> × <see cref="PartialRotaryFactor"/>).</summary>
    public int RotaryDim => (int)(HeadDim * PartialRotaryFactor);

    private static string InferType(JsonObject raw, string source)
    {
        if (raw["architectures"] is JsonArray { Count: > 0 } a && IO.JsonFile.Value<string>(a[0], source) is { } arch)
        {
            var known = new Dictionary<string, string>
            {
                ["GPT2LMHeadModel"] = "gpt2",
                ["LlamaForCausalLM"] = "llama",
                ["MistralForCausalLM"] = "mistral",
                ["Qwen2ForCausalLM"] = "qwen2",
                ["PhiForCausalLM"] = "phi",
            };
            if (known.TryGetValue(arch, out var t))
            {
                return t;
            }

            throw new DpoSharpException($"{source}: no model_type and architecture '{arch}' is not supported. Supported model_type values: {string.Join(", ", SupportedModelTypes)}.");
        }

        throw new DpoSharpException($"{source}: missing 'model_type'. Supported: {string.Join(", ", SupportedModelTypes)}.");
    }

    private static string CheckAct(string act, string source, string field) => act switch
    {
        "silu" or "swish" or "gelu_new" or "gelu_pytorch_tanh" or "gelu" or "gelu_fast" => act,
        _ => throw new DpoSharpException($"{source}: {field} '{act}' is not supported (supported: silu, gelu_new, gelu_pytorch_tanh, gelu_fast, gelu)."),
    };

    private static RopeScaling? ParseRopeScaling(JsonObject raw, string source)
    {
        if (raw["rope_scaling"] is not JsonObject rs)
        {
            return null;
        }

        var r = new Reader(rs, source + " rope_scaling");
        string type = r.String("rope_type") ?? r.String("type") ?? "default";
        switch (type)
        {
            case "default":
                return null;
            case "linear":
                return new RopeScaling(type, r.Double("factor") ?? 1.0, 0, 0, 0);
            case "llama3":
                return new RopeScaling(
                    type,
                    r.Double("factor") ?? throw new DpoSharpException($"{source}: rope_scaling llama3 needs 'factor'."),
                    r.Double("low_freq_factor") ?? 1.0,
                    r.Double("high_freq_factor") ?? 4.0,
                    r.Int("original_max_position_embeddings") ?? 8192);
            default:
                throw new DpoSharpException($"{source}: rope_scaling type '{type}' is not supported (supported: default, linear, llama3).");
        }
    }

    private sealed class Reader(JsonObject o, string source)
    {
        public string? String(string key) => o[key] switch
        {
            null => null,
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            _ => throw Bad(key, "a string"),
        };

        public int? Int(string key) => o[key] switch
        {
            null => null,
            JsonValue v when v.TryGetValue<int>(out var i) => i,
            JsonValue v when v.TryGetValue<double>(out var d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue => (int)d,
            _ => throw Bad(key, "an integer"),
        };

        public int RequiredInt(string key)
        {
            int v = Int(key) ?? throw new DpoSharpException($"{source}: missing required field '{key}'.");
            if (v <= 0)
            {
                throw Bad(key, "a positive integer");
            }

            if (v > MaxDimension)
            {
                throw new DpoSharpException($"{source}: {key} = {v} is beyond any published model (at most {MaxDimension:N0}); the file is corrupt or not a model config.");
            }

            return v;
        }

        public double? Double(string key) => o[key] switch
        {
            null => null,
            JsonValue v when v.TryGetValue<double>(out var d) => d,
            _ => throw Bad(key, "a number"),
        };

        public bool? Bool(string key) => o[key] switch
        {
            null => null,
            JsonValue v when v.TryGetValue<bool>(out var b) => b,
            _ => throw Bad(key, "true or false"),
        };

        public int[] IntList(string key) => o[key] switch
        {
            null => [],
            JsonArray arr => arr.Select(n => n is JsonValue v && v.TryGetValue<int>(out var i) ? i : throw Bad(key, "an integer or a list of integers")).ToArray(),
            _ => [Int(key)!.Value],
        };

        public void CheckDivisible(int a, int b, string na, string nb)
        {
            if (b <= 0 || a % b != 0)
            {
                throw new DpoSharpException($"{source}: {na} ({a}) must be divisible by {nb} ({b}).");
            }
        }

        private DpoSharpException Bad(string key, string what) => new($"{source}: field '{key}' must be {what} (got {o[key]?.ToJsonString()}).");
    }
}
