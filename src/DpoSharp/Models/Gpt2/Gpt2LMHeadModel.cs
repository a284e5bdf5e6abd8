using DpoSharp.Modules;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace DpoSharp.Models.Gpt2;

/// <summary>
/// GPT2LMHeadModel: learned positions, Conv1D weights stored (in, out), <c>gelu_new</c>, lm_head tied to
/// <c>transformer.wte</c>. Parameter names: <c>transformer.{wte,wpe}</c>, <c>transformer.h.N.{ln_1,ln_2}</c>,
/// <c>transformer.h.N.attn.{c_attn,c_proj}</c>, <c>transformer.h.N.mlp.{c_fc,c_proj}</c>, <c>transformer.ln_f</c>.
/// Checkpoint keys are accepted with or without the <c>transformer.</c> prefix (OpenAI's original upload has none).
/// </summary>
public sealed class Gpt2LMHeadModel : CausalLMBase
{
    private const string Prefix = "transformer.";

    [ComponentName(Name = "transformer")]
    private readonly Gpt2Model _transformer;

    /// <summary>Builds the model with uninitialised parameters on <paramref name="device"/>.</summary>
    public Gpt2LMHeadModel(ModelConfig config, Device device, ScalarType dtype)
        : base(nameof(Gpt2LMHeadModel), config, useRope: false, lmHeadBias: false, device, dtype)
    {
        _transformer = new Gpt2Model(config, device, dtype);
        RegisterComponents();
    }

    /// <inheritdoc/>
    protected override Tensor InputEmbeddingWeight => _transformer.EmbedWeight;

    /// <inheritdoc/>
    protected override Tensor HiddenStatesCore(Tensor inputIds, Tensor positionIds, AttentionContext ctx) =>
        _transformer.Forward(inputIds, positionIds, ctx);  // (B, T, D)

    /// <inheritdoc/>
    public override IEnumerable<string> CheckpointKeysFor(string parameterName) =>
        parameterName.StartsWith(Prefix, StringComparison.Ordinal) ? [parameterName, parameterName[Prefix.Length..]] : [parameterName];

    /// <inheritdoc/>
    public override bool IsIgnorableCheckpointKey(string key) =>
        base.IsIgnorableCheckpointKey(key) || key.EndsWith(".attn.bias", StringComparison.Ordinal) || key.EndsWith(".attn.masked_bias", StringComparison.Ordinal);
}

/// <summary>The transformer (<c>transformer.*</c>).</summary>
internal sealed class Gpt2Model : nn.Module
{
    [ComponentName(Name = "wte")]
    private readonly Modules.Embedding _wte;

    [ComponentName(Name = "wpe")]
    private readonly Modules.Embedding _wpe;

    [ComponentName(Name = "h")]
    private readonly ModuleList<Gpt2Block> _h;

    [ComponentName(Name = "ln_f")]
    private readonly Modules.LayerNorm _lnF;

    public Gpt2Model(ModelConfig c, Device device, ScalarType dtype)
        : base(nameof(Gpt2Model))
    {
        _wte = new Modules.Embedding(c.VocabSize, c.HiddenSize, device, dtype);
        _wpe = new Modules.Embedding(c.MaxPositionEmbeddings, c.HiddenSize, device, dtype);
        _h = DecoderStack.Create(c.NumLayers, i => new Gpt2Block(c, i, device, dtype));
        _lnF = new Modules.LayerNorm(c.HiddenSize, c.NormEps, device, dtype);
        RegisterComponents();
    }

    public Tensor EmbedWeight => _wte.Weight;

    public Tensor Forward(Tensor inputIds, Tensor positionIds, AttentionContext ctx)
    {
        var h = _wte.call(inputIds) + _wpe.call(positionIds);    // (B, T, D)
        return _lnF.call(DecoderStack.Run(h, _h, ctx));
    }
}

/// <summary>Pre-norm block: <c>x + attn(ln_1(x))</c>, then <c>+ mlp(ln_2(·))</c>.</summary>
internal sealed class Gpt2Block : nn.Module, IDecoderLayer
{
    [ComponentName(Name = "ln_1")]
    private readonly Modules.LayerNorm _ln1;

    [ComponentName(Name = "attn")]
    private readonly Gpt2Attention _attn;

    [ComponentName(Name = "ln_2")]
    private readonly Modules.LayerNorm _ln2;

    [ComponentName(Name = "mlp")]
    private readonly Gpt2Mlp _mlp;

    public Gpt2Block(ModelConfig c, int index, Device device, ScalarType dtype)
        : base(nameof(Gpt2Block))
    {
        _ln1 = new Modules.LayerNorm(c.HiddenSize, c.NormEps, device, dtype);
        _attn = new Gpt2Attention(c, index, device, dtype);
        _ln2 = new Modules.LayerNorm(c.HiddenSize, c.NormEps, device, dtype);
        _mlp = new Gpt2Mlp(c, device, dtype);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, AttentionContext ctx)
    {
        var h = x + _attn.Forward(_ln1.call(x), ctx);
        return h + _mlp.call(_ln2.call(h));
    }
}

/// <summary>Fused q/k/v projection <c>c_attn</c> and output <c>c_proj</c>.</summary>
internal sealed class Gpt2Attention : nn.Module
{
    [ComponentName(Name = "c_attn")]
    private readonly nn.Module<Tensor, Tensor> _cAttn;

    [ComponentName(Name = "c_proj")]
    private readonly nn.Module<Tensor, Tensor> _cProj;

    private readonly ModelConfig _c;
    private readonly int _layer;

    public Gpt2Attention(ModelConfig c, int layer, Device device, ScalarType dtype)
        : base(nameof(Gpt2Attention))
    {
        _c = c;
        _layer = layer;
        _cAttn = new Conv1D(c.HiddenSize, 3L * c.HiddenSize, device, dtype);
        _cProj = new Conv1D(c.HiddenSize, c.HiddenSize, device, dtype);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, AttentionContext ctx)
    {
        var qkv = _cAttn.call(x).chunk(3, -1);   // 3 × (B, T, D)
        var o = AttentionOps.Attend(qkv[0], qkv[1], qkv[2], _c.NumHeads, _c.NumHeads, _c.HeadDim, ctx, _layer); // (B, T, D)
        return _cProj.call(o);
    }
}

/// <summary><c>c_proj(gelu_new(c_fc(x)))</c>.</summary>
internal sealed class Gpt2Mlp : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "c_fc")]
    private readonly nn.Module<Tensor, Tensor> _cFc;

    [ComponentName(Name = "c_proj")]
    private readonly nn.Module<Tensor, Tensor> _cProj;

    private readonly string _act;

    public Gpt2Mlp(ModelConfig c, Device device, ScalarType dtype)
        : base(nameof(Gpt2Mlp))
    {
        _cFc = new Conv1D(c.HiddenSize, c.IntermediateSize, device, dtype);
        _cProj = new Conv1D(c.IntermediateSize, c.HiddenSize, device, dtype);
        _act = c.HiddenAct;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => _cProj.call(Activations.Apply(_act, _cFc.call(x)));
}
