using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>
/// <c>nn.Linear</c> in Hugging Face layout: <c>weight</c> (out, in), optional <c>bias</c> (out). Parameters start
/// uninitialised; <c>CausalLMBase.InitializeWeights</c> or a checkpoint load fills them.
/// </summary>
public sealed class Linear : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter? bias;

    /// <summary>Creates the layer.</summary>
    public Linear(long inFeatures, long outFeatures, bool hasBias, Device device, ScalarType dtype)
        : base(nameof(Linear))
    {
        weight = Params.Empty([outFeatures, inFeatures], device, dtype);
        bias = hasBias ? Params.Empty([outFeatures], device, dtype) : null;
        RegisterComponents();
    }

    /// <summary>Weight (out, in).</summary>
    public Parameter Weight => weight;

    /// <summary>Bias (out), or null.</summary>
    public Parameter? Bias => bias;

    /// <inheritdoc/>
    public override Tensor forward(Tensor input) => nn.functional.linear(input, weight, bias);
}
