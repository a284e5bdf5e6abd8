using System.ComponentModel;
using static DpoSharp.OptionChecks;

namespace DpoSharp.Models.Lora;

/// <summary>
/// LoRA settings (PEFT's <c>LoraConfig</c> names and defaults as TRL's recipes use them): which linear layers get an
/// adapter, its rank, scaling and dropout. Checked by <see cref="Validate"/>; used by <see cref="LoraModel.Inject"/>
/// and written to <c>adapter_config.json</c> by <see cref="PeftAdapter.Save"/>.
/// </summary>
public sealed class LoraOptions
{
    /// <summary>The <see cref="TargetModules"/> value that selects every linear layer except the <c>lm_head</c>.</summary>
    public const string AllLinear = "all-linear";

    /// <summary>The only supported <see cref="Bias"/>: biases stay frozen.</summary>
    public const string BiasNone = "none";

    /// <summary>Rank r of the update matrices (lora_A: r × in, lora_B: out × r).</summary>
    /// <value>Default 8.</value>
    [Description("LoRA rank r")]
    public int R { get; set; } = 8;

    /// <summary>lora_alpha: the update B·A is scaled by alpha / r.</summary>
    /// <value>Default 16.</value>
    [Description("LoRA alpha: the update is scaled by alpha / r")]
    public double LoraAlpha { get; set; } = 16;

    /// <summary>Dropout probability on the adapters' input path (training mode only; off with disable_dropout).</summary>
    /// <value>Default 0.05.</value>
    [Description("dropout on the LoRA input path")]
    public double LoraDropout { get; set; } = 0.05;

    /// <summary>
    /// The layers that get an adapter: module names matched against the end of each module path as PEFT does
    /// (<c>q_proj</c> matches <c>model.layers.0.self_attn.q_proj</c>; a dotted suffix such as <c>mlp.c_proj</c> works
    /// too), or the single value <see cref="AllLinear"/> (every linear layer except the <c>lm_head</c>). Empty: PEFT's
    /// default for the architecture (<see cref="DefaultTargetModules"/>: gpt2 <c>c_attn</c>; llama, mistral, qwen2
    /// <c>q_proj, v_proj</c>; phi <c>q_proj, v_proj, fc1, fc2</c>).
    /// </summary>
    /// <value>Default empty (the architecture's default).</value>
    [Description("LoRA target modules, comma-separated (e.g. q_proj,v_proj), or all-linear")]
    public List<string> TargetModules { get; set; } = [];

    /// <summary>Which biases train: only <see cref="BiasNone"/> (none: disabled adapters give exactly the base model).</summary>
    /// <value>Default <c>none</c>.</value>
    [Description("LoRA bias: none")]
    public string Bias { get; set; } = BiasNone;

    /// <summary>The base model's name or path, recorded as <c>base_model_name_or_path</c> in <c>adapter_config.json</c>.</summary>
    /// <value>Default null.</value>
    [Description("base model name or path recorded in adapter_config.json")]
    public string? BaseModelNameOrPath { get; set; }

    /// <summary>PEFT's default target modules of a <c>model_type</c> (its <c>TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING</c>), or empty.</summary>
    public static IReadOnlyList<string> DefaultTargetModules(string modelType) => modelType switch
    {
        "gpt2" => ["c_attn"],
        "llama" or "mistral" or "qwen2" => ["q_proj", "v_proj"],
        "phi" => ["q_proj", "v_proj", "fc1", "fc2"],
        _ => [],
    };

    /// <summary>A copy.</summary>
    public LoraOptions Clone()
    {
        var c = (LoraOptions)MemberwiseClone();
        c.TargetModules = [.. TargetModules];
        return c;
    }

    /// <summary>Throws <see cref="DpoSharpException"/> naming the first bad option.</summary>
    public void Validate()
    {
        Require(R >= 1, $"lora_r must be at least 1 (got {R}).");
        Require(Finite(LoraAlpha) && LoraAlpha > 0, $"lora_alpha must be a positive number (got {LoraAlpha}).");
        Require(Finite(LoraDropout) && LoraDropout >= 0 && LoraDropout < 1, $"lora_dropout must be in [0, 1) (got {LoraDropout}).");
        Require(Bias == BiasNone, $"lora bias '{Bias}' is not supported: use 'none' (biases stay frozen).");
        Require(TargetModules.All(t => !string.IsNullOrWhiteSpace(t)), "lora target_modules holds an empty name; give module names such as q_proj,v_proj, or all-linear.");
        Require(!TargetModules.Contains(AllLinear) || TargetModules.Count == 1, $"lora target_modules: '{AllLinear}' cannot be combined with other names ({string.Join(",", TargetModules)}).");
        Require(!TargetModules.Any(t => t == "lm_head" || t.EndsWith(".lm_head", StringComparison.Ordinal)), "lora target_modules: adapters on lm_head are not supported; target the attention and MLP layers (or all-linear, which leaves lm_head out).");
    }
}
