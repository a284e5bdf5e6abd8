using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>The activations the architectures use.</summary>
public static class Activations
{
    /// <summary>Applies <paramref name="name"/> (silu/swish, gelu_new/gelu_pytorch_tanh/gelu_fast = tanh-GELU, gelu = erf-GELU).</summary>
    public static Tensor Apply(string name, Tensor x) => name switch
    {
        "silu" or "swish" => nn.functional.silu(x),
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => nn.functional.gelu(x, GELU.Approximate.tanh),
        "gelu" => nn.functional.gelu(x),
        _ => throw new ArgumentException("unsupported activation " + name),
    };
}
