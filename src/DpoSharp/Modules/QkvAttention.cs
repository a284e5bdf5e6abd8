using DpoSharp.Models;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>The Hugging Face name of <see cref="QkvAttention"/>'s output projection.</summary>
internal enum AttentionOutputName
{
    /// <summary><c>o_proj</c> (Llama, Mistral, Qwen2).</summary>
    OProj,

    /// <summary><c>dense</c> (Phi).</summary>
    Dense,
}

/// <summary>
/// Attention with separate q/k/v projections around <see cref="AttentionOps.Attend"/> and an output projection
/// named <c>o_proj</c> (Llama/Mistral/Qwen2) or <c>dense</c> (Phi); the other name's field stays null and is not
/// registered, so the state-dict keys are exactly the Hugging Face ones.
/// </summary>
internal sealed class QkvAttention : nn.Module
{
    [ComponentName(Name = "q_proj")]
    private readonly nn.Module<Tensor, Tensor> _qProj;

    [ComponentName(Name = "k_proj")]
    private readonly nn.Module<Tensor, Tensor> _kProj;

    [ComponentName(Name = "v_proj")]
    private readonly nn.Module<Tensor, Tensor> _vProj;

    [ComponentName(Name = "o_proj")]
    private readonly nn.Module<Tensor, Tensor>? _oProj;

    [ComponentName(Name = "dense")]
    private readonly nn.Module<Tensor, Tensor>? _dense;

    private readonly int _numHeads;
    private readonly int _numKvHeads;
    private readonly int _headDim;
    private readonly int _layer;

    public QkvAttention(ModelConfig c, int layer, bool qkvBias, bool outputBias, AttentionOutputName outputName, Device device, ScalarType dtype)
        : base(nameof(QkvAttention))
    {
        _numHeads = c.NumHeads;
        _numKvHeads = c.NumKvHeads;
        _headDim = c.HeadDim;
        _layer = layer;
        _qProj = new Linear(c.HiddenSize, c.NumHeads * c.HeadDim, qkvBias, device, dtype);
        _kProj = new Linear(c.HiddenSize, c.NumKvHeads * c.HeadDim, qkvBias, device, dtype);
        _vProj = new Linear(c.HiddenSize, c.NumKvHeads * c.HeadDim, qkvBias, device, dtype);
        var output = new Linear(c.NumHeads * c.HeadDim, c.HiddenSize, outputBias, device, dtype);
        if (outputName == AttentionOutputName.Dense)
        {
            _dense = output;
        }
        else
        {
            _oProj = output;
        }

        RegisterComponents();
    }

    /// <summary>(B, T, D) → (B, T, D).</summary>
    public Tensor Forward(Tensor x, AttentionContext ctx)
    {
        var o = AttentionOps.Attend(_qProj.call(x), _kProj.call(x), _vProj.call(x), _numHeads, _numKvHeads, _headDim, ctx, _layer); // (B, T, nh*hd)
        return (_oProj ?? _dense!).call(o);
    }
}
