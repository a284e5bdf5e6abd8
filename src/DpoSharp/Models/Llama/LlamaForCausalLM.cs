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

    /// <summary>Builds the model with uninitialised parameters on <paramref name="device"/>.</summary>
    public LlamaForCausalLM(ModelConfig config, Device device, ScalarType dtype)
        : base(nameof(LlamaForCausalLM), config, useRope: true, lmHeadBias: false, device, dtype)
    {
        _model = new LlamaModel(config, device, dtype);
        RegisterComponents();
    }

    /// <inheritdoc/>
    protected override Tensor InputEmbeddingWeight => _model.EmbedWeight;

    /// <inheritdoc/>
    protected override Tensor HiddenStatesCore(Tensor inputIds, Tensor positionIds, AttentionContext ctx) =>
        _model.Forward(inputIds, ctx);  // (B, T, D)
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
        _layers = DecoderStack.Create(c.NumLayers, i => new LlamaDecoderLayer(c, i, device, dtype));
        _norm = new RmsNorm(c.HiddenSize, c.NormEps, device, dtype);
        RegisterComponents();
    }

    public Tensor EmbedWeight => _embedTokens.Weight;

    public Tensor Forward(Tensor inputIds, AttentionContext ctx)
    {
        var h = _embedTokens.call(inputIds);    // (B, T, D)
        return _norm.call(DecoderStack.Run(h, _layers, ctx));
    }
}

/// <summary>One decoder layer: pre-norm attention and pre-norm SwiGLU MLP, each with a residual.</summary>
internal sealed class LlamaDecoderLayer : nn.Module, IDecoderLayer
{
    [ComponentName(Name = "self_attn")]
    private readonly QkvAttention _selfAttn;

    [ComponentName(Name = "mlp")]
    private readonly LlamaMlp _mlp;

    [ComponentName(Name = "input_layernorm")]
    private readonly RmsNorm _inputLayernorm;

    [ComponentName(Name = "post_attention_layernorm")]
    private readonly RmsNorm _postAttentionLayernorm;

    public LlamaDecoderLayer(ModelConfig c, int index, Device device, ScalarType dtype)
        : base(nameof(LlamaDecoderLayer))
    {
        // Qwen2 has q/k/v biases but none on o_proj: the config says so in AttentionOutputBias.
        _selfAttn = new QkvAttention(c.HiddenSize, c.NumHeads, c.NumKvHeads, c.HeadDim, index, qkvBias: c.AttentionBias, outputBias: c.AttentionOutputBias, AttentionOutputName.OProj, device, dtype);
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
