using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>GPT-2's <c>Conv1D</c>: a linear layer whose <c>weight</c> is stored (in, out); <c>bias</c> (out).</summary>
public sealed class Conv1D : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;

    /// <summary>Creates the layer.</summary>
    public Conv1D(long inFeatures, long outFeatures, Device device, ScalarType dtype)
        : base(nameof(Conv1D))
    {
        weight = Params.Empty([inFeatures, outFeatures], device, dtype);
        bias = Params.Empty([outFeatures], device, dtype);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input) => matmul(input, weight).add_(bias); // (..., out)
}
