using System.Text.Json.Nodes;
using DpoSharp.Models;

namespace DpoSharp.Tests.TestSupport;

/// <summary>
/// Writes tiny random Hugging Face checkpoints (config.json + model.safetensors + generation_config.json) for
/// tests: hidden 32, 2 layers, 4 heads, vocab 260 by default. Stable: other areas' tests rely on it.
/// </summary>
public static class TinyCheckpoints
{
    /// <summary>The model types <see cref="Write"/> knows: gpt2, llama, mistral, qwen2, phi.</summary>
    public static IReadOnlyList<string> ModelTypes { get; } = ["gpt2", "llama", "mistral", "qwen2", "phi"];

    /// <summary>Default vocabulary: 256 byte tokens + 4 specials (256 = EOS/BOS).</summary>
    public const int DefaultVocabSize = 260;

    /// <summary>EOS (and BOS) id of the tiny configs.</summary>
    public const int EosTokenId = 256;

    /// <summary>
    /// The tiny config.json of <paramref name="modelType"/>: gpt2 (tied), llama (GQA 4/2, untied), mistral
    /// (GQA, sliding window 8), qwen2 (GQA, q/k/v biases, tied), phi (partial rotary 0.5, lm_head bias).
    /// </summary>
    public static JsonObject Config(string modelType, int vocabSize = DefaultVocabSize)
    {
        var c = modelType switch
        {
            "gpt2" => new JsonObject
            {
                ["architectures"] = new JsonArray("GPT2LMHeadModel"),
                ["n_embd"] = 32,
                ["n_layer"] = 2,
                ["n_head"] = 4,
                ["n_positions"] = 128,
                ["n_inner"] = null,
                ["activation_function"] = "gelu_new",
                ["layer_norm_epsilon"] = 1e-5,
                ["tie_word_embeddings"] = true,
            },
            "llama" or "mistral" or "qwen2" => new JsonObject
            {
                ["architectures"] = new JsonArray(modelType switch { "llama" => "LlamaForCausalLM", "mistral" => "MistralForCausalLM", _ => "Qwen2ForCausalLM" }),
                ["hidden_size"] = 32,
                ["intermediate_size"] = 64,
                ["num_hidden_layers"] = 2,
                ["num_attention_heads"] = 4,
                ["num_key_value_heads"] = 2,
                ["max_position_embeddings"] = 128,
                ["rms_norm_eps"] = 1e-6,
                ["rope_theta"] = 10000.0,
                ["hidden_act"] = "silu",
                ["tie_word_embeddings"] = modelType == "qwen2",
            },
            "phi" => new JsonObject
            {
                ["architectures"] = new JsonArray("PhiForCausalLM"),
                ["hidden_size"] = 32,
                ["intermediate_size"] = 64,
                ["num_hidden_layers"] = 2,
                ["num_attention_heads"] = 4,
                ["max_position_embeddings"] = 128,
                ["partial_rotary_factor"] = 0.5,
                ["rope_theta"] = 10000.0,
                ["layer_norm_eps"] = 1e-5,
                ["hidden_act"] = "gelu_new",
                ["tie_word_embeddings"] = false,
            },
            _ => throw new ArgumentException("unknown tiny model type " + modelType),
        };
        c["model_type"] = modelType;
        c["vocab_size"] = vocabSize;
        c["bos_token_id"] = EosTokenId;
        c["eos_token_id"] = EosTokenId;
        if (modelType == "mistral")
        {
            c["sliding_window"] = 8;
        }

        return c;
    }

    /// <summary>
    /// Writes a tiny random checkpoint of <paramref name="modelType"/> into <paramref name="dir"/> (created) and
    /// returns <paramref name="dir"/>. <paramref name="configure"/> may edit the config before the model is built.
    /// Weights are deterministic per <paramref name="seed"/>; <paramref name="maxShardBytes"/> shards the weights.
    /// With <paramref name="withTokenizer"/> a byte-level tokenizer (<see cref="WriteTokenizer"/>) is written too.
    /// </summary>
    public static string Write(string dir, string modelType, long seed = 0, int vocabSize = DefaultVocabSize,
        Action<JsonObject>? configure = null, long maxShardBytes = ModelSaver.DefaultMaxShardBytes, bool withTokenizer = true)
    {
        if (withTokenizer)
        {
            Directory.CreateDirectory(dir);
            WriteTokenizer(dir);
        }

        var json = Config(modelType, vocabSize);
        configure?.Invoke(json);
        var config = ModelConfig.Parse(json);
        using var model = ModelLoader.Create(config, seed: seed);
        Randomize(model, seed);
        ModelSaver.Save(model, dir, copyTokenizerFrom: dir, maxShardBytes: maxShardBytes);
        return dir;
    }

    /// <summary>
    /// Writes a byte-level BPE <c>tokenizer.json</c> without merges (token id = byte value, GPT-2's byte-to-char
    /// mapping) plus the special token <c>&lt;|endoftext|&gt;</c> = 256 (BOS/EOS/PAD), and its tokenizer_config.json.
    /// </summary>
    public static void WriteTokenizer(string dir)
    {
        var vocab = new JsonObject();
        var chars = ByteLevelAlphabet.Chars();
        for (int b = 0; b < 256; b++)
        {
            vocab[chars[b]] = b;
        }

        var tokenizer = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(new JsonObject
            {
                ["id"] = EosTokenId,
                ["content"] = "<|endoftext|>",
                ["single_word"] = false,
                ["lstrip"] = false,
                ["rstrip"] = false,
                ["normalized"] = false,
                ["special"] = true,
            }),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = false, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray() },
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizer.ToJsonString());
        var config = new JsonObject
        {
            ["tokenizer_class"] = "GPT2Tokenizer",
            ["bos_token"] = "<|endoftext|>",
            ["eos_token"] = "<|endoftext|>",
            ["unk_token"] = "<|endoftext|>",
            ["add_bos_token"] = false,
            ["model_max_length"] = 128,
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
    }

    /// <summary>
    /// Makes every parameter matter (HF init leaves biases 0 and norms 1, which would hide wiring mistakes):
    /// weights ~ N(0, 0.2), biases ~ N(0, 0.1), norm weights ~ 1 + N(0, 0.1).
    /// </summary>
    public static void Randomize(ICausalLM model, long seed)
    {
        using var _ = TorchSharp.torch.no_grad();
        using var gen = new TorchSharp.torch.Generator((ulong)seed + 1000);
        foreach (var (name, p) in model.Module.named_parameters())
        {
            bool isBias = name.EndsWith("bias", StringComparison.Ordinal);
            bool isNorm = name.Contains("norm", StringComparison.Ordinal) || name.Contains("ln_", StringComparison.Ordinal);
            using var noise = TorchSharp.torch.empty(p.shape).normal_(0.0, isBias || isNorm ? 0.1 : 0.2, gen);
            p.copy_(isNorm && !isBias ? noise + 1.0 : noise);
        }
    }
}
