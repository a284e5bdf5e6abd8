using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>LayerNorm with <c>weight</c> and <c>bias</c> (dim).</summary>
public sealed class LayerNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly double _eps;

    /// <summary>Creates the norm.</summary>
    public LayerNorm(long dim, double eps, Device device, ScalarType dtype)
        : base(nameof(LayerNorm))
    {
        weight = Params.Empty([dim], device, dtype);
        bias = Params.Empty([dim], device, dtype);
        _eps = eps;
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => nn.functional.layer_norm(x, [weight.shape[0]], weight, bias, _eps);
}
