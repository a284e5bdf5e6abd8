using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>GPT-2's <c>Conv1D</c>: a linear layer whose <c>weight</c> is stored (in, out); <c>bias</c> (out). May carry a
/// LoRA adapter (<see cref="ILoraTarget"/>; PEFT's <c>fan_in_fan_out</c>).</summary>
public sealed class Conv1D : nn.Module<Tensor, Tensor>, ILoraTarget
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private LoraAdapter? lora; // registered as "lora" only while attached

    /// <summary>Creates the layer.</summary>
    public Conv1D(long inFeatures, long outFeatures, Device device, ScalarType dtype)
        : base(nameof(Conv1D))
    {
        weight = Params.Empty([inFeatures, outFeatures], device, dtype);
        bias = Params.Empty([outFeatures], device, dtype);
        RegisterComponents();
    }

    /// <summary>Weight (in, out).</summary>
    public Parameter Weight => weight;

    /// <summary>Bias (out).</summary>
    public Parameter Bias => bias;

    Parameter? ILoraTarget.Bias => bias;

    /// <inheritdoc/>
    public long InFeatures => weight.shape[0];

    /// <inheritdoc/>
    public long OutFeatures => weight.shape[1];

    /// <inheritdoc/>
    public bool FanInFanOut => true;

    /// <inheritdoc/>
    public LoraAdapter? Lora => lora;

    /// <inheritdoc/>
    public void AttachLora(LoraAdapter? adapter) => lora = LoraAdapter.Attach(this, this, lora, adapter);

    /// <inheritdoc/>
    public override Tensor forward(Tensor input) => LoraAdapter.Apply(matmul(input, weight).add_(bias), input, lora); // (..., out)
}
