using DpoSharp.Data;
using DpoSharp.Models;
using KvCache = DpoSharp.Modules.KvCache;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Tests.TestSupport;

/// <summary>
/// A tiny causal LM for fast trainer tests: token embedding → dropout → linear → logits (plus a bias, a 1-D
/// parameter, so the no-weight-decay group is exercised). Counts its forward passes.
/// </summary>
internal sealed class TinyCausalLM : ICausalLM
{
    private readonly TinyModule _module;

    public TinyCausalLM(int vocab = 32, int hidden = 16, double dropout = 0.1, long seed = 1)
    {
        _module = new TinyModule(vocab, hidden, dropout);

        // Initialise from a private generator: the global one is shared with tests running in parallel.
        using var gen = new torch.Generator((ulong)seed);
        using (no_grad())
        {
            foreach (var p in _module.parameters())
            {
                using var init = empty(p.shape).normal_(0.0, 0.5, gen);
                p.copy_(init);
            }
        }
        Config = new ModelConfig { ModelType = "tiny", VocabSize = vocab, Raw = new System.Text.Json.Nodes.JsonObject { ["model_type"] = "tiny", ["vocab_size"] = vocab, ["hidden_size"] = hidden } };
        Vocab = vocab;
        Hidden = hidden;
        DropoutP = dropout;
    }

    public int Vocab { get; }

    public int Hidden { get; }

    public double DropoutP { get; }

    public int Forwards { get; private set; }

    public ModelConfig Config { get; }

    public nn.Module Module => _module;

    public Device Device => CPU;

    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null, KvCache? cache = null)
    {
        Forwards++;
        return _module.call(inputIds);
    }

    /// <summary>A copy with identical weights (fresh parameters).</summary>
    public TinyCausalLM Clone()
    {
        var c = new TinyCausalLM(Vocab, Hidden, DropoutP, seed: 0);
        using var _ = no_grad();
        var src = _module.state_dict();
        foreach (var (k, v) in c._module.state_dict())
        {
            v.copy_(src[k]);
        }

        return c;
    }

    /// <summary>Copies of every parameter (for before/after comparisons).</summary>
    public Dictionary<string, float[]> Snapshot() =>
        _module.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().cpu().data<float>().ToArray());

    public void Dispose() => _module.Dispose();

    private sealed class TinyModule : nn.Module<Tensor, Tensor>
    {
        private readonly Embedding embed;
        private readonly Dropout drop;
        private readonly Linear head;

        public TinyModule(int vocab, int hidden, double dropout)
            : base(nameof(TinyModule))
        {
            embed = nn.Embedding(vocab, hidden);
            drop = nn.Dropout(dropout);
            head = nn.Linear(hidden, vocab, hasBias: true);
            RegisterComponents();
        }

        public override Tensor forward(Tensor ids) => head.call(drop.call(embed.call(ids)));  // (B, T, V)
    }
}

/// <summary>Synthetic preference pairs: chosen completions use the low half of the vocabulary, rejected the high half.</summary>
internal static class TinyData
{
    public static List<TokenizedPair> Pairs(int count, int vocab = 32, int seed = 7)
    {
        var rng = new Random(seed);
        var list = new List<TokenizedPair>();
        int half = vocab / 2;
        for (int i = 0; i < count; i++)
        {
            int[] prompt = Enumerable.Range(0, 2 + rng.Next(3)).Select(_ => 1 + rng.Next(vocab - 1)).ToArray();
            int[] chosen = Enumerable.Range(0, 1 + rng.Next(4)).Select(_ => 1 + rng.Next(half - 1)).ToArray();
            int[] rejected = Enumerable.Range(0, 1 + rng.Next(4)).Select(_ => half + rng.Next(half)).ToArray();
            list.Add(new TokenizedPair(prompt, chosen, rejected) { SourceIndex = i });
        }

        return list;
    }
}
