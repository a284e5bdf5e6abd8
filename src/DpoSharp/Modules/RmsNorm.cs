using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>RMSNorm as in Llama: normalised in fp32, cast back, then scaled by <c>weight</c> (dim).</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double _eps;

    /// <summary>Creates the norm.</summary>
    public RmsNorm(long dim, double eps, Device device, ScalarType dtype)
        : base(nameof(RmsNorm))
    {
        weight = Params.Empty([dim], device, dtype);
        _eps = eps;
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        var dtype = x.dtype;
        var h = x.to(ScalarType.Float32);
        var variance = h.pow(2).mean([-1], keepdim: true);    // (B, T, 1)
        h = h * rsqrt(variance + _eps);
        return weight * h.to(dtype);
    }
}
