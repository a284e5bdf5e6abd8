using System.Text.Json.Nodes;

namespace DpoSharp.Models;

/// <summary>
/// Published model shapes (their <c>config.json</c> fields), for building random-weight models without a
/// download: benches, memory estimates, tests.
/// </summary>
public static class ModelPresets
{
    private static readonly Dictionary<string, string> Json = new(StringComparer.OrdinalIgnoreCase)
    {
        // openai-community/gpt2
        ["gpt2"] = """
            {"architectures":["GPT2LMHeadModel"],"model_type":"gpt2","vocab_size":50257,"n_positions":1024,"n_ctx":1024,
             "n_embd":768,"n_layer":12,"n_head":12,"n_inner":null,"activation_function":"gelu_new","layer_norm_epsilon":1e-05,
             "bos_token_id":50256,"eos_token_id":50256,"tie_word_embeddings":true}
            """,
        // microsoft/phi-2
        ["phi-2"] = """
            {"architectures":["PhiForCausalLM"],"model_type":"phi","vocab_size":51200,"hidden_size":2560,"intermediate_size":10240,
             "num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":32,"max_position_embeddings":2048,
             "partial_rotary_factor":0.4,"rope_theta":10000.0,"layer_norm_eps":1e-05,"hidden_act":"gelu_new","qk_layernorm":false,
             "tie_word_embeddings":false,"bos_token_id":50256,"eos_token_id":50256}
            """,
        // Qwen/Qwen2.5-0.5B
        ["qwen2.5-0.5b"] = """
            {"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","vocab_size":151936,"hidden_size":896,"intermediate_size":4864,
             "num_hidden_layers":24,"num_attention_heads":14,"num_key_value_heads":2,"max_position_embeddings":32768,
             "rope_theta":1000000.0,"rms_norm_eps":1e-06,"hidden_act":"silu","tie_word_embeddings":true,
             "use_sliding_window":false,"sliding_window":32768,"max_window_layers":24,"bos_token_id":151643,"eos_token_id":151643}
            """,
        // meta-llama/Llama-3.2-1B
        ["llama-3.2-1b"] = """
            {"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":128256,"hidden_size":2048,"intermediate_size":8192,
             "num_hidden_layers":16,"num_attention_heads":32,"num_key_value_heads":8,"head_dim":64,"max_position_embeddings":131072,
             "rope_theta":500000.0,"rope_scaling":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,
             "original_max_position_embeddings":8192,"rope_type":"llama3"},"rms_norm_eps":1e-05,"hidden_act":"silu",
             "attention_bias":false,"mlp_bias":false,"tie_word_embeddings":true,"bos_token_id":128000,"eos_token_id":128001}
            """,
        // TinyLlama/TinyLlama-1.1B-Chat-v1.0
        ["tinyllama-1.1b"] = """
            {"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":32000,"hidden_size":2048,"intermediate_size":5632,
             "num_hidden_layers":22,"num_attention_heads":32,"num_key_value_heads":4,"max_position_embeddings":2048,
             "rope_theta":10000.0,"rms_norm_eps":1e-05,"hidden_act":"silu","tie_word_embeddings":false,
             "bos_token_id":1,"eos_token_id":2}
            """,
    };

    /// <summary>Preset names: gpt2, phi-2, qwen2.5-0.5b, llama-3.2-1b, tinyllama-1.1b.</summary>
    public static IReadOnlyList<string> Names { get; } = ["gpt2", "phi-2", "qwen2.5-0.5b", "llama-3.2-1b", "tinyllama-1.1b"];

    /// <summary>The config of preset <paramref name="name"/> (case-insensitive).</summary>
    /// <exception cref="DpoSharpException">Unknown preset.</exception>
    public static ModelConfig Get(string name) => Json.TryGetValue(name, out var json)
        ? ModelConfig.Parse((JsonObject)JsonNode.Parse(json)!, $"preset '{name}'")
        : throw new DpoSharpException($"unknown model preset '{name}'. Presets: {string.Join(", ", Names)}.");
}
