using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>
/// <c>nn.Linear</c> in Hugging Face layout: <c>weight</c> (out, in), optional <c>bias</c> (out). Parameters start
/// uninitialised; <c>CausalLMBase.InitializeWeights</c> or a checkpoint load fills them. May carry a LoRA adapter
/// (<see cref="ILoraTarget"/>).
/// </summary>
public sealed class Linear : nn.Module<Tensor, Tensor>, ILoraTarget
{
    private readonly Parameter weight;
    private readonly Parameter? bias;
    private LoraAdapter? lora; // registered as "lora" only while attached

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
    public long InFeatures => weight.shape[1];

    /// <inheritdoc/>
    public long OutFeatures => weight.shape[0];

    /// <inheritdoc/>
    public bool FanInFanOut => false;

    /// <inheritdoc/>
    public LoraAdapter? Lora => lora;

    /// <inheritdoc/>
    public void AttachLora(LoraAdapter? adapter) => lora = LoraAdapter.Attach(this, this, lora, adapter);

    /// <inheritdoc/>
    public override Tensor forward(Tensor input) => LoraAdapter.Apply(nn.functional.linear(input, weight, bias), input, lora);
}
