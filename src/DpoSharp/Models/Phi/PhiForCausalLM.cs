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

    /// <summary>Builds the model with uninitialised parameters on <paramref name="device"/>.</summary>
    public PhiForCausalLM(ModelConfig config, Device device, ScalarType dtype)
        : base(nameof(PhiForCausalLM), config, useRope: true, lmHeadBias: true, device, dtype)
    {
        _model = new PhiModel(config, device, dtype);
        RegisterComponents();
    }

    /// <inheritdoc/>
    protected override Tensor InputEmbeddingWeight => _model.EmbedWeight;

    /// <inheritdoc/>
    protected override Tensor HiddenStatesCore(Tensor inputIds, Tensor positionIds, AttentionContext ctx) =>
        _model.Forward(inputIds, ctx);  // (B, T, D)
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
        _layers = DecoderStack.Create(c.NumLayers, i => new PhiDecoderLayer(c, i, device, dtype));
        _finalLayernorm = new Modules.LayerNorm(c.HiddenSize, c.NormEps, device, dtype);
        RegisterComponents();
    }

    public Tensor EmbedWeight => _embedTokens.Weight;

    public Tensor Forward(Tensor inputIds, AttentionContext ctx)
    {
        var h = _embedTokens.call(inputIds);    // (B, T, D)
        return _finalLayernorm.call(DecoderStack.Run(h, _layers, ctx));
    }
}

/// <summary>One block: a shared LayerNorm, attention and MLP in parallel, one residual.</summary>
internal sealed class PhiDecoderLayer : nn.Module, IDecoderLayer
{
    [ComponentName(Name = "self_attn")]
    private readonly QkvAttention _selfAttn;

    [ComponentName(Name = "mlp")]
    private readonly PhiMlp _mlp;

    [ComponentName(Name = "input_layernorm")]
    private readonly Modules.LayerNorm _inputLayernorm;

    public PhiDecoderLayer(ModelConfig c, int index, Device device, ScalarType dtype)
        : base(nameof(PhiDecoderLayer))
    {
        _selfAttn = new QkvAttention(c.HiddenSize, c.NumHeads, c.NumKvHeads, c.HeadDim, index, qkvBias: true, outputBias: true, AttentionOutputName.Dense, device, dtype);
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
