using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>Parameter factory shared by the layers: uninitialised storage (weights are loaded or initialised afterwards).</summary>
internal static class Params
{
    public static Parameter Empty(long[] shape, Device device, ScalarType dtype) =>
        new(empty(shape, dtype, device), requires_grad: true);
}

/// <summary>
/// <c>nn.Linear</c> in Hugging Face layout: <c>weight</c> (out, in), optional <c>bias</c> (out). Parameters start
/// uninitialised; <see cref="Models.CausalLMBase.InitializeWeights"/> or a checkpoint load fills them.
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

/// <summary>Token/position embedding table <c>weight</c> (num, dim).</summary>
public sealed class Embedding : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    /// <summary>Creates the table.</summary>
    public Embedding(long num, long dim, Device device, ScalarType dtype)
        : base(nameof(Embedding))
    {
        weight = Params.Empty([num, dim], device, dtype);
        RegisterComponents();
    }

    /// <summary>The table (num, dim); tied lm_heads use it directly.</summary>
    public Parameter Weight => weight;

    /// <inheritdoc/>
    public override Tensor forward(Tensor ids)
    {
        var flat = weight.index_select(0, ids.reshape(-1));   // (B*T, D)
        var shape = ids.shape.Append(weight.shape[1]).ToArray();
        return flat.view(shape);                              // (B, T, D)
    }
}

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
