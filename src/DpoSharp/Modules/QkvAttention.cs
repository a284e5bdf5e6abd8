using TorchSharp.Utils;
using static TorchSharp.torch;

namespace DpoSharp.Modules;

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

    /// <summary>
    /// Creates the projections: q (<paramref name="hiddenSize"/> → <paramref name="numHeads"/> × <paramref name="headDim"/>),
    /// k and v (→ <paramref name="numKvHeads"/> × <paramref name="headDim"/>), each with a bias when
    /// <paramref name="qkvBias"/>, and the output projection back to <paramref name="hiddenSize"/> (bias when
    /// <paramref name="outputBias"/>) named after <paramref name="outputName"/>. <paramref name="layer"/> is the
    /// block index (the KV-cache slot).
    /// </summary>
    public QkvAttention(int hiddenSize, int numHeads, int numKvHeads, int headDim, int layer, bool qkvBias, bool outputBias, AttentionOutputName outputName, Device device, ScalarType dtype)
        : base(nameof(QkvAttention))
    {
        _numHeads = numHeads;
        _numKvHeads = numKvHeads;
        _headDim = headDim;
        _layer = layer;
        _qProj = new Linear(hiddenSize, numHeads * headDim, qkvBias, device, dtype);
        _kProj = new Linear(hiddenSize, numKvHeads * headDim, qkvBias, device, dtype);
        _vProj = new Linear(hiddenSize, numKvHeads * headDim, qkvBias, device, dtype);
        var output = new Linear(numHeads * headDim, hiddenSize, outputBias, device, dtype);
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
