using DpoSharp.Modules;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace DpoSharp.Models.Llama;

/// <summary>
/// LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM: RMSNorm (fp32), RoPE, grouped-query attention,
/// SwiGLU MLP; Qwen2 adds q/k/v biases; lm_head optionally tied to <c>model.embed_tokens</c>.
/// Parameter names: <c>model.embed_tokens.weight</c>, <c>model.layers.N.self_attn.{q,k,v,o}_proj</c>,
/// <c>model.layers.N.mlp.{gate,up,down}_proj</c>, <c>model.layers.N.{input,post_attention}_layernorm</c>,
/// <c>model.norm</c>, <c>lm_head</c>.
/// </summary>
public sealed class LlamaForCausalLM : CausalLMBase
{
    [ComponentName(Name = "model")]
    private readonly LlamaModel _model;

    [ComponentName(Name = "lm_head")]
    private readonly nn.Module<Tensor, Tensor>? _lmHead;

    /// <summary>Builds the model with uninitialised parameters on <paramref name="device"/>.</summary>
    public LlamaForCausalLM(ModelConfig config, Device device, ScalarType dtype)
        : base(nameof(LlamaForCausalLM), config, useRope: true)
    {
        _model = new LlamaModel(config, device, dtype);
        _lmHead = config.TieWordEmbeddings ? null : new Modules.Linear(config.HiddenSize, config.VocabSize, false, device, dtype);
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
internal sealed class LlamaModel : nn.Module
{
    [ComponentName(Name = "embed_tokens")]
    private readonly Modules.Embedding _embedTokens;

    [ComponentName(Name = "layers")]
    private readonly ModuleList<LlamaDecoderLayer> _layers;

    [ComponentName(Name = "norm")]
    private readonly RmsNorm _norm;

    public LlamaModel(ModelConfig c, Device device, ScalarType dtype)
        : base(nameof(LlamaModel))
    {
        _embedTokens = new Modules.Embedding(c.VocabSize, c.HiddenSize, device, dtype);
        _layers = new ModuleList<LlamaDecoderLayer>(Enumerable.Range(0, c.NumLayers).Select(i => new LlamaDecoderLayer(c, i, device, dtype)).ToArray());
        _norm = new RmsNorm(c.HiddenSize, c.NormEps, device, dtype);
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

        return _norm.call(h);
    }
}

/// <summary>One decoder layer: pre-norm attention and pre-norm SwiGLU MLP, each with a residual.</summary>
internal sealed class LlamaDecoderLayer : nn.Module
{
    [ComponentName(Name = "self_attn")]
    private readonly LlamaAttention _selfAttn;

    [ComponentName(Name = "mlp")]
    private readonly LlamaMlp _mlp;

    [ComponentName(Name = "input_layernorm")]
    private readonly RmsNorm _inputLayernorm;

    [ComponentName(Name = "post_attention_layernorm")]
    private readonly RmsNorm _postAttentionLayernorm;

    public LlamaDecoderLayer(ModelConfig c, int index, Device device, ScalarType dtype)
        : base(nameof(LlamaDecoderLayer))
    {
        _selfAttn = new LlamaAttention(c, index, device, dtype);
        _mlp = new LlamaMlp(c, device, dtype);
        _inputLayernorm = new RmsNorm(c.HiddenSize, c.NormEps, device, dtype);
        _postAttentionLayernorm = new RmsNorm(c.HiddenSize, c.NormEps, device, dtype);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, AttentionContext ctx)
    {
        var h = x + _selfAttn.Forward(_inputLayernorm.call(x), ctx);
        return h + _mlp.call(_postAttentionLayernorm.call(h));
    }
}

/// <summary>q/k/v/o projections around <see cref="AttentionOps.Attend"/>.</summary>
internal sealed class LlamaAttention : nn.Module
{
    [ComponentName(Name = "q_proj")]
    private readonly nn.Module<Tensor, Tensor> _qProj;

    [ComponentName(Name = "k_proj")]
    private readonly nn.Module<Tensor, Tensor> _kProj;

    [ComponentName(Name = "v_proj")]
    private readonly nn.Module<Tensor, Tensor> _vProj;

    [ComponentName(Name = "o_proj")]
    private readonly nn.Module<Tensor, Tensor> _oProj;

    private readonly ModelConfig _c;
    private readonly int _layer;

    public LlamaAttention(ModelConfig c, int layer, Device device, ScalarType dtype)
        : base(nameof(LlamaAttention))
    {
        _c = c;
        _layer = layer;
        bool qkvBias = c.AttentionBias;
        bool oBias = c.AttentionBias && c.ModelType != "qwen2";
        _qProj = new Modules.Linear(c.HiddenSize, c.NumHeads * c.HeadDim, qkvBias, device, dtype);
        _kProj = new Modules.Linear(c.HiddenSize, c.NumKvHeads * c.HeadDim, qkvBias, device, dtype);
        _vProj = new Modules.Linear(c.HiddenSize, c.NumKvHeads * c.HeadDim, qkvBias, device, dtype);
        _oProj = new Modules.Linear(c.NumHeads * c.HeadDim, c.HiddenSize, oBias, device, dtype);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, AttentionContext ctx)
    {
        var o = AttentionOps.Attend(_qProj.call(x), _kProj.call(x), _vProj.call(x), _c.NumHeads, _c.NumKvHeads, _c.HeadDim, ctx, _layer); // (B, T, nh*hd)
        return _oProj.call(o);
    }
}

/// <summary>SwiGLU: <c>down(act(gate(x)) * up(x))</c>.</summary>
internal sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate_proj")]
    private readonly nn.Module<Tensor, Tensor> _gateProj;

    [ComponentName(Name = "up_proj")]
    private readonly nn.Module<Tensor, Tensor> _upProj;

    [ComponentName(Name = "down_proj")]
    private readonly nn.Module<Tensor, Tensor> _downProj;

    private readonly string _act;

    public LlamaMlp(ModelConfig c, Device device, ScalarType dtype)
        : base(nameof(LlamaMlp))
    {
        _gateProj = new Modules.Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias, device, dtype);
        _upProj = new Modules.Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias, device, dtype);
        _downProj = new Modules.Linear(c.IntermediateSize, c.HiddenSize, c.MlpBias, device, dtype);
        _act = c.HiddenAct;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => _downProj.call(Activations.Apply(_act, _gateProj.call(x)) * _upProj.call(x));
}
