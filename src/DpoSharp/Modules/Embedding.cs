using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Modules;

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
