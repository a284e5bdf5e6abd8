using System.ComponentModel;
using DpoSharp.Losses;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using static DpoSharp.OptionChecks;
using static TorchSharp.torch;

namespace DpoSharp.Training;

/// <summary>
/// The memory levers of a run: gradient checkpointing, log-probs from hidden states in chunks (only at completion
/// positions), and the dtype of frozen weights. Each lever gives the same results as it being off (fp32 rounding
/// aside; not bf16/fp16, which change the numbers). <see cref="ApplyTo"/> sets the first three on a model built by
/// <see cref="ModelLoader"/>; <see cref="TorchDtype"/> is a load-time choice (<see cref="ModelLoader.Load"/>'s dtype).
/// </summary>
public sealed class MemoryOptions
{
    /// <summary>Accepted <see cref="TorchDtype"/> values.</summary>
    public static IReadOnlyList<string> TorchDtypes { get; } = ["float32", "bfloat16", "float16"];

    /// <summary>
    /// Recompute each decoder layer in the backward instead of keeping its activations (transformers'
    /// <c>gradient_checkpointing</c>); null: on for a model with LoRA adapters, off otherwise
    /// (<see cref="EffectiveGradientCheckpointing"/>).
    /// </summary>
    /// <value>Default null (on with LoRA; transformers' default is false).</value>
    [Description("recompute decoder layers in the backward instead of keeping their activations (null: on with LoRA)")]
    public bool? GradientCheckpointing { get; set; }

    /// <summary>
    /// Positions whose logits are computed at once when reading log-probs from the final hidden states (the
    /// (B, T, V) logits never exist in full); 0 = one forward with full logits.
    /// </summary>
    /// <value>Default 256 (<see cref="CausalLMBase.DefaultLogitsChunkSize"/>; (256, V) fp32 logits per chunk).</value>
    [Description("positions per lm_head chunk for log-probs (0 = full logits)")]
    public int LogitsChunkSize { get; set; } = CausalLMBase.DefaultLogitsChunkSize;

    /// <summary>Compute logits only at positions that predict a completion token (with <see cref="LogitsChunkSize"/> &gt; 0).</summary>
    /// <value>Default true.</value>
    [Description("compute logits only at positions predicting completion tokens")]
    public bool CompletionOnlyLogits { get; set; } = true;

    /// <summary>
    /// dtype of frozen weights (the reference model, a LoRA base): <c>float32</c>, <c>bfloat16</c> or <c>float16</c>.
    /// On CPUs without bf16/fp16 matrix units, float32 is much faster (<see cref="Diagnostics.MatmulSpeed"/>).
    /// </summary>
    /// <value>Default <c>float32</c>.</value>
    [Description("dtype of frozen weights (the reference model; with LoRA, the base): float32, bfloat16 or float16")]
    public string TorchDtype { get; set; } = "float32";

    /// <summary>Whether decoder layers are recomputed in the backward: <see cref="GradientCheckpointing"/>, or when it is
    /// null, <paramref name="lora"/> (a model with LoRA adapters keeps little else, so its activations dominate).</summary>
    public bool EffectiveGradientCheckpointing(bool lora) => GradientCheckpointing ?? lora;

    /// <summary><see cref="TorchDtype"/> as a scalar type.</summary>
    public ScalarType TorchScalarType => ParseDtype(TorchDtype);

    /// <summary>The scalar type of a <c>torch_dtype</c> name (<c>float32</c>/<c>fp32</c>, <c>bfloat16</c>/<c>bf16</c>, <c>float16</c>/<c>fp16</c>).</summary>
    /// <exception cref="DpoSharpException">Another name.</exception>
    public static ScalarType ParseDtype(string name) => name?.Trim().ToLowerInvariant() switch
    {
        "float32" or "fp32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        "float16" or "fp16" => ScalarType.Float16,
        _ => throw new DpoSharpException($"torch_dtype must be one of {string.Join(", ", TorchDtypes)} (got '{name}')."),
    };

    /// <summary>Sets <see cref="EffectiveGradientCheckpointing"/> (for a model with or without LoRA adapters, so inject
    /// them first), <see cref="LogitsChunkSize"/> and <see cref="CompletionOnlyLogits"/> on <paramref name="model"/>
    /// when it was built by <see cref="ModelLoader"/> (other models are left as they are).</summary>
    public void ApplyTo(ICausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        Validate();
        if (model is CausalLMBase lm)
        {
            lm.GradientCheckpointing = EffectiveGradientCheckpointing(model.HasAdapters());
            lm.LogitsChunkSize = LogitsChunkSize;
            lm.CompletionOnlyLogits = CompletionOnlyLogits;
        }
    }

    /// <summary>A copy.</summary>
    public MemoryOptions Clone() => (MemoryOptions)MemberwiseClone();

    /// <summary>Throws <see cref="DpoSharpException"/> naming the first bad option.</summary>
    public void Validate()
    {
        Require(LogitsChunkSize >= 0, $"logits_chunk_size must be 0 (full logits) or a positive number of positions (got {LogitsChunkSize}).");
        _ = ParseDtype(TorchDtype);
    }
}
