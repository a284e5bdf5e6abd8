using DpoSharp.Modules;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace DpoSharp.Models.Phi;

/// <summary>
/// PhiForCausalLM (microsoft/phi-2 layout): one LayerNorm feeding attention and MLP in parallel
/// (<c>x + attn(ln(x)) + mlp(ln(x))</c>), partial rotary, biases everywhere, <c>gelu_new</c>,
/// <c>model.final_layernorm</c> and an <c>lm_head</c> with bias.
/// Parameter names: <c>model.embed_tokens</c>, <c>model.layers.N.self_attn.{q_proj,k_proj,v_proj,dense}</c>,
/// <c>model.layers.N.mlp.{fc1,fc2}</c>, <c>model.layers.N.input_layernorm</c>, <c>model.final_layernorm</c>, <c>lm_head</c>.
/// </summary>
public sealed class PhiForCausalLM : CausalLMBase
{
    [ComponentName(Name = "model")]
    private readonly PhiModel _model;

    [ComponentName(Name = "lm_head")]
    private readonly nn.Module<Tensor, Tensor>? _lmHead;

    /// <summary>Builds the model with uninitialised parameters on <paramref name="device"/>.</summary>
    public PhiForCausalLM(ModelConfig config, Device device, ScalarType dtype)
        : base(nameof(PhiForCausalLM), config, useRope: true)
    {
        _model = new PhiModel(config, device, dtype);
        _lmHead = config.TieWordEmbeddings ? null : new Modules.Linear(config.HiddenSize, config.VocabSize, true, device, dtype);
        RegisterComponents();
    }

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tensor inputIds, Tensor positionIds, AttentionContext ctx)
    {
        var h = _model.Forward(inputIds, ctx);                                   // (B, T, D)
        return _lmHead is null ? nn.functional.linear(h, _model.EmbedWeight) : _lmHead.call(h); // (B, T, V)
    }
}

/// <summary>The decoder stack (<c>model.*</c>).</summary>
internal sealed class PhiModel : nn.Module
{
    [ComponentName(Name = "embed_tokens")]
    private readonly Modules.Embedding _embedTokens;

    [ComponentName(Name = "layers")]
    private readonly ModuleList<PhiDecoderLayer> _layers;

    [ComponentName(Name = "final_layernorm")]
    private readonly Modules.LayerNorm _finalLayernorm;

    public PhiModel(ModelConfig c, Device device, ScalarType dtype)
        : base(nameof(PhiModel))
    {
        _embedTokens = new Modules.Embedding(c.VocabSize, c.HiddenSize, device, dtype);
        _layers = new ModuleList<PhiDecoderLayer>(Enumerable.Range(0, c.NumLayers).Select(i => new PhiDecoderLayer(c, i, device, dtype)).ToArray());
        _finalLayernorm = new Modules.LayerNorm(c.HiddenSize, c.NormEps, device, dtype);
        RegisterComponents();
    }

    public Tensor EmbedWeight => _embedTokens.Weight;

    public Tensor Forward(Tensor inputIds, AttentionContext ctx)
    {
        var h = _embedTokens.call(inputIds);    // (B, T, D)
        foreach (var layer in _layers)
        {
            h = layer.Forward(h, ctx);
        }

        return _finalLayernorm.call(h);
    }
}

/// <summary>One block: a shared LayerNorm, attention and MLP in parallel, one residual.</summary>
internal sealed class PhiDecoderLayer : nn.Module
{
    [ComponentName(Name = "self_attn")]
    private readonly PhiAttention _selfAttn;

    [ComponentName(Name = "mlp")]
    private readonly PhiMlp _mlp;

    [ComponentName(Name = "input_layernorm")]
    private readonly Modules.LayerNorm _inputLayernorm;

    public PhiDecoderLayer(ModelConfig c, int index, Device device, ScalarType dtype)
        : base(nameof(PhiDecoderLayer))
    {
        _selfAttn = new PhiAttention(c, index, device, dtype);
        _mlp = new PhiMlp(c, device, dtype);
        _inputLayernorm = new Modules.LayerNorm(c.HiddenSize, c.NormEps, device, dtype);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, AttentionContext ctx)
    {
        var h = _inputLayernorm.call(x);
        return x + _selfAttn.Forward(h, ctx) + _mlp.call(h);
    }
}

/// <summary>q/k/v projections, partial-rotary attention, <c>dense</c> output.</summary>
internal sealed class PhiAttention : nn.Module
{
    [ComponentName(Name = "q_proj")]
    private readonly nn.Module<Tensor, Tensor> _qProj;

    [ComponentName(Name = "k_proj")]
    private readonly nn.Module<Tensor, Tensor> _kProj;

    [ComponentName(Name = "v_proj")]
    private readonly nn.Module<Tensor, Tensor> _vProj;

    [ComponentName(Name = "dense")]
    private readonly nn.Module<Tensor, Tensor> _dense;

    private readonly ModelConfig _c;
    private readonly int _layer;

    public PhiAttention(ModelConfig c, int layer, Device device, ScalarType dtype)
        : base(nameof(PhiAttention))
    {
        _c = c;
        _layer = layer;
        _qProj = new Modules.Linear(c.HiddenSize, c.NumHeads * c.HeadDim, true, device, dtype);
        _kProj = new Modules.Linear(c.HiddenSize, c.NumKvHeads * c.HeadDim, true, device, dtype);
        _vProj = new Modules.Linear(c.HiddenSize, c.NumKvHeads * c.HeadDim, true, device, dtype);
        _dense = new Modules.Linear(c.NumHeads * c.HeadDim, c.HiddenSize, true, device, dtype);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, AttentionContext ctx)
    {
        var o = AttentionOps.Attend(_qProj.call(x), _kProj.call(x), _vProj.call(x), _c.NumHeads, _c.NumKvHeads, _c.HeadDim, ctx, _layer); // (B, T, nh*hd)
        return _dense.call(o);
    }
}

/// <summary><c>fc2(act(fc1(x)))</c>.</summary>
internal sealed class PhiMlp : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "fc1")]
    private readonly nn.Module<Tensor, Tensor> _fc1;

    [ComponentName(Name = "fc2")]
    private readonly nn.Module<Tensor, Tensor> _fc2;

    private readonly string _act;

    public PhiMlp(ModelConfig c, Device device, ScalarType dtype)
        : base(nameof(PhiMlp))
    {
        _fc1 = new Modules.Linear(c.HiddenSize, c.IntermediateSize, true, device, dtype);
        _fc2 = new Modules.Linear(c.IntermediateSize, c.HiddenSize, true, device, dtype);
        _act = c.HiddenAct;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => _fc2.call(Activations.Apply(_act, _fc1.call(x)));
}
