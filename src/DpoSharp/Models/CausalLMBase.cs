using DpoSharp.IO;
using DpoSharp.Modules;
using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace DpoSharp.Models;

/// <summary>
/// Shared plumbing of the architectures: positions, masks, RoPE tables, the <c>lm_head</c> (or tied embedding),
/// weight init, and the mapping between parameter names and checkpoint keys. Subclasses build the backbone
/// (embeddings → <c>Modules.DecoderStack</c> → final norm) and implement <see cref="HiddenStatesCore"/>.
/// </summary>
public abstract class CausalLMBase : nn.Module, ICausalLM
{
    private readonly RotaryEmbedding? _rope;

    // RegisterComponents (run by the subclass) lists the subclass's fields first, so "lm_head" follows the backbone
    // as in transformers' state dicts; null (tied embeddings) registers nothing.
    [ComponentName(Name = "lm_head")]
    private readonly nn.Module<Tensor, Tensor>? _lmHead;

    private int _logitsChunkSize = DefaultLogitsChunkSize;

    /// <summary>Default <see cref="LogitsChunkSize"/>: (256, V) fp32 logits per chunk, 155 MB at V = 151,936.</summary>
    public const int DefaultLogitsChunkSize = 256;

    /// <summary>Stores the config; subclasses create their layers then call <c>RegisterComponents()</c>.</summary>
    protected CausalLMBase(string name, ModelConfig config, bool useRope)
        : base(name)
    {
        Config = config;
        _rope = useRope ? new RotaryEmbedding(config.RotaryDim, config.RopeTheta, config.RopeScaling) : null;
    }

    /// <summary>
    /// As <see cref="CausalLMBase(string, ModelConfig, bool)"/>, and creates the <c>lm_head</c> (hidden → vocab,
    /// bias when <paramref name="lmHeadBias"/>) unless the config ties it to the input embedding; see
    /// <see cref="LmHead"/>.
    /// </summary>
    protected CausalLMBase(string name, ModelConfig config, bool useRope, bool lmHeadBias, Device device, ScalarType dtype)
        : this(name, config, useRope)
    {
        _lmHead = config.TieWordEmbeddings ? null : new Modules.Linear(config.HiddenSize, config.VocabSize, lmHeadBias, device, dtype);
    }

    /// <inheritdoc/>
    public ModelConfig Config { get; }

    /// <inheritdoc/>
    public nn.Module Module => this;

    /// <inheritdoc/>
    public Device Device => parameters().First().device;

    /// <inheritdoc/>
    /// <remarks>Set by <see cref="ModelLoader.Load"/> (full path) and kept by <see cref="ModelLoader.Copy"/>; settable for
    /// models whose tokenizer lives elsewhere.</remarks>
    public string? SourceDirectory { get; set; }

    /// <summary>
    /// The longest sequence <see cref="Forward"/> accepts: <c>max_position_embeddings</c> for learned position
    /// embeddings (GPT-2), null (no hard limit) for rotary positions.
    /// </summary>
    public int? MaxSequenceLength => _rope is null ? Config.MaxPositionEmbeddings : null;

    /// <summary>The dtype of the parameters.</summary>
    public ScalarType DType => parameters().First().dtype;

    /// <summary>
    /// Gradient checkpointing: when gradients are on, each decoder layer keeps only its input and is recomputed in the
    /// backward (<see cref="ActivationCheckpoint"/>). Same gradients, less activation memory, one more forward of
    /// the layers per step.
    /// </summary>
    /// <value>Default false.</value>
    public bool GradientCheckpointing { get; set; }

    /// <summary>
    /// Positions (rows of hidden states) whose logits <c>CompletionLogProbs</c> computes at once: completion
    /// log-probs come from <see cref="ForwardHidden"/> and <see cref="LmHead"/> chunk by chunk, recomputed in the
    /// backward, so the (B, T, V) logits never exist in full. 0: one <see cref="Forward"/> with full logits.
    /// </summary>
    /// <value>Default <see cref="DefaultLogitsChunkSize"/> (256).</value>
    public int LogitsChunkSize
    {
        get => _logitsChunkSize;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _logitsChunkSize = value;
        }
    }

    /// <summary>
    /// With <see cref="LogitsChunkSize"/> &gt; 0: compute logits only at the positions that predict a completion token
    /// (position t-1 for completion token t), not at prompt and padding positions.
    /// </summary>
    /// <value>Default true.</value>
    public bool CompletionOnlyLogits { get; set; } = true;

    /// <summary>The <c>lm_head</c> weight (V, D): its own, or the input embedding when tied.</summary>
    public Tensor LmHeadWeight => _lmHead is Modules.Linear linear ? linear.Weight : InputEmbeddingWeight;

    /// <summary>The <c>lm_head</c> bias (V) (Phi), or null.</summary>
    public Tensor? LmHeadBias => (_lmHead as Modules.Linear)?.Bias;

    /// <summary>
    /// Whether <see cref="LmHead"/> is a plain fp32 linear map, <c>x·LmHeadWeightᵀ (+ LmHeadBias)</c>, with no adapter:
    /// then <c>CompletionLogProbs</c> computes the chunked log-probs with its matrix products written into one reused
    /// buffer and the head's gradients accumulated by hand (<c>HiddenStateLogProbs.LinearHead</c>).
    /// </summary>
    public bool HasPlainLmHead =>
        (_lmHead is null || (_lmHead is Modules.Linear { Lora: null })) && LmHeadWeight.dtype == ScalarType.Float32;

    /// <summary>The trainable tensors <see cref="LmHead"/> uses.</summary>
    public IEnumerable<Tensor> LmHeadParameters => _lmHead is null ? [InputEmbeddingWeight] : _lmHead.parameters();

    /// <summary>Copies <see cref="GradientCheckpointing"/>, <see cref="LogitsChunkSize"/> and <see cref="CompletionOnlyLogits"/> from <paramref name="other"/>.</summary>
    public void CopyMemorySettings(CausalLMBase other)
    {
        ArgumentNullException.ThrowIfNull(other);
        GradientCheckpointing = other.GradientCheckpointing;
        LogitsChunkSize = other.LogitsChunkSize;
        CompletionOnlyLogits = other.CompletionOnlyLogits;
    }

    /// <inheritdoc/>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null, KvCache? cache = null)
    {
        using var scope = NewDisposeScope();
        var logits = LmHead(Backbone(inputIds, attentionMask, positionIds, cache));   // (B, T, V)
        if (logits.dtype != ScalarType.Float32)
        {
            logits = logits.to(ScalarType.Float32);
        }

        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The final hidden states (B, T, D), after the final norm, in the model's dtype: <see cref="Forward"/> without the
    /// <c>lm_head</c> (arguments as there, no KV cache). <c>Forward(x) == LmHead(ForwardHidden(x))</c>.
    /// </summary>
    /// <param name="inputIds">(B, T) token ids.</param>
    /// <param name="attentionMask">(B, T) padding mask or (B, 1, T, T) full mask, or null.</param>
    /// <param name="positionIds">(B, T) position ids, or null.</param>
    /// <param name="sequenceGather">Rows holding several sequences: (S, Tv) flat token indices of each sequence's
    /// attention row (<c>SequenceBatch.SequenceGather</c>); attention then runs per sequence on the causal fast path
    /// instead of with the full <paramref name="attentionMask"/> where <see cref="AttendsPerSequence"/> says so (pass
    /// the full mask otherwise).</param>
    /// <param name="sequenceScatter">(B·T) flat indices into the (S·Tv) attention outputs, with <paramref name="sequenceGather"/>.</param>
    public Tensor ForwardHidden(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null, Tensor? sequenceGather = null, Tensor? sequenceScatter = null)
    {
        using var scope = NewDisposeScope();
        return Backbone(inputIds, attentionMask, positionIds, cache: null, sequenceGather, sequenceScatter).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Whether <see cref="ForwardHidden"/> runs attention per sequence on the rows of <paramref name="sequenceGather"/>
    /// (SDPA's causal path, no mask) rather than on the batch's rows with the full (B, 1, T, T) mask; when it does,
    /// callers need not build that mask. Per sequence when its attention area is at most half the mask's,
    /// 2·S·Tv² ≤ B·T² (rows packing several sequences, <c>padding_free</c>): SDPA's CPU kernel cannot skip the masked
    /// blocks of a full mask, but the per-sequence rows cost a gather and a scatter of q, k, v and the output in every
    /// layer, which made them ≈ 10% slower per DPO step on prefix-shared rows [prompt | chosen | rejected]
    /// (BENCHMARKS.md), whose area ratio is always above one half. Never where a sliding window is shorter than the
    /// sequences.
    /// </summary>
    /// <param name="sequenceGather">(S, Tv) <c>SequenceBatch.SequenceGather</c>, or null (one sequence per row: no).</param>
    /// <param name="inputIds">(B, T) the batch's rows.</param>
    public bool AttendsPerSequence(Tensor? sequenceGather, Tensor inputIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (sequenceGather is null || (Config.SlidingWindow is int window && sequenceGather.shape[1] > window))
        {
            return false;
        }

        double perSequence = sequenceGather.shape[0] * Math.Pow(sequenceGather.shape[1], 2);   // S·Tv²
        double dense = inputIds.shape[0] * Math.Pow(inputIds.shape[1], 2);                   // B·T²
        return 2 * perSequence <= dense;
    }

    /// <summary>
    /// Logits (…, V) from final hidden states (…, D), in the model's dtype: the <c>lm_head</c> created by the
    /// constructor (with its bias), else (tied embeddings) the input embedding (V, D).
    /// </summary>
    public Tensor LmHead(Tensor hidden) =>
        _lmHead is null ? nn.functional.linear(hidden, InputEmbeddingWeight) : _lmHead.call(hidden);

    private Tensor Backbone(Tensor inputIds, Tensor? attentionMask, Tensor? positionIds, KvCache? cache, Tensor? sequenceGather = null, Tensor? sequenceScatter = null)
    {
        if (inputIds.dim() != 2)
        {
            throw new ArgumentException($"input_ids must be (B, T); got {inputIds.dim()} dims");
        }

        long b = inputIds.shape[0], t = inputIds.shape[1];
        long past = cache?.Length ?? 0;
        bool fullMask = attentionMask is not null && attentionMask.dim() == 4;
        if (fullMask && cache is not null)
        {
            throw new ArgumentException("a (B, 1, T, T) attention mask cannot be combined with a KV cache");
        }

        // Per-sequence attention rows are causal only: not where a sliding window cuts them.
        bool perSequence = cache is null && sequenceScatter is not null && AttendsPerSequence(sequenceGather, inputIds);

        // Rows holding several segments (a full mask or per-sequence rows) are longer than their sequences: check the positions.
        long needed = (fullMask || perSequence) && positionIds is not null ? positionIds.max().item<long>() + 1 : past + t;
        if (MaxSequenceLength is int max && needed > max)
        {
            // Learned position embeddings (GPT-2) have no row for later positions: libtorch would abort on the lookup.
            throw new DpoSharpException(
                $"a sequence of {needed} tokens is longer than this {Config.ModelType} model's {Config.MaxPositionEmbeddings} positions (n_positions in config.json). " +
                $"Lower max_length (--max-length {Config.MaxPositionEmbeddings} or less), or shorten the prompt / --max-new-tokens.");
        }

        var device = inputIds.device;
        positionIds ??= arange(past, past + t, ScalarType.Int64, device).unsqueeze(0).expand(b, t); // (B, T)
        var (mask, isCausal) = perSequence
            ? (null, false)
            : fullMask
            ? (AttentionContext.WithSlidingWindow(attentionMask!.to(ScalarType.Bool), positionIds, Config.SlidingWindow), false)
            : AttentionContext.BuildMask(attentionMask, b, t, past, Config.SlidingWindow, device);
        Tensor? cos = null, sin = null;
        if (_rope is not null)
        {
            (cos, sin) = _rope.CosSin(positionIds, DType);
        }

        var ctx = new AttentionContext
        {
            Mask = mask,
            IsCausal = isCausal,
            Cos = cos,
            Sin = sin,
            Cache = cache,
            CheckpointLayers = GradientCheckpointing,
            SequenceGather = perSequence ? sequenceGather : null,
            SequenceScatter = perSequence ? sequenceScatter : null,
        };
        return HiddenStatesCore(inputIds, positionIds, ctx);      // (B, T, D)
    }

    /// <summary>The architecture's backbone: embeddings → layers → final norm. Returns (B, T, D).</summary>
    protected abstract Tensor HiddenStatesCore(Tensor inputIds, Tensor positionIds, AttentionContext ctx);

    /// <summary>The input embedding (V, D); the <c>lm_head</c> when the config ties them.</summary>
    protected abstract Tensor InputEmbeddingWeight { get; }

    /// <summary>Checkpoint keys that may hold parameter <paramref name="parameterName"/>, preferred first.</summary>
    public virtual IEnumerable<string> CheckpointKeysFor(string parameterName) => [parameterName];

    /// <summary>Checkpoint keys that may be present but are not parameters (buffers, tied copies).</summary>
    public virtual bool IsIgnorableCheckpointKey(string key) =>
        key.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal) || (Config.TieWordEmbeddings && key == "lm_head.weight");

    /// <summary>
    /// Hugging Face-style random init: weights of linear/embedding layers ~ N(0, 0.02), biases 0, norm weights 1.
    /// Deterministic for a given <paramref name="seed"/>.
    /// </summary>
    public void InitializeWeights(long seed)
    {
        using var _ = no_grad();
        using var gen = new Generator((ulong)seed, CPU);
        foreach (var (name, p) in BaseParameters())
        {
            if (p.device_type == DeviceType.META)
            {
                continue;
            }

            string leaf = name[(name.LastIndexOf('.') + 1)..];
            bool isNorm = name.Contains("norm", StringComparison.Ordinal) || name.Contains(".ln_", StringComparison.Ordinal) || name.Contains("ln_f", StringComparison.Ordinal);
            if (leaf == "bias")
            {
                p.zero_();
            }
            else if (isNorm)
            {
                p.fill_(1.0);
            }
            else
            {
                using var cpu = empty(p.shape, ScalarType.Float32, CPU).normal_(0.0, 0.02, gen);
                p.copy_(cpu);
            }
        }
    }

    /// <summary>Copies every parameter from <paramref name="checkpoint"/>; missing or unexpected keys are an error.</summary>
    public void LoadWeights(SafeTensorsCheckpoint checkpoint)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        var missing = new List<string>();
        var nonFinite = new List<string>();
        foreach (var (name, p) in BaseParameters())
        {
            var key = CheckpointKeysFor(name).FirstOrDefault(checkpoint.Contains);
            if (key is null)
            {
                missing.Add(name);
                continue;
            }

            checkpoint.ReadInto(key, p);
            used.Add(key);
            using (NewDisposeScope())
            {
                if (!p.isfinite().all().item<bool>())
                {
                    nonFinite.Add(key);
                }
            }
        }

        if (nonFinite.Count > 0)
        {
            throw new DpoSharpException($"{checkpoint.Directory}: {nonFinite.Count} weight tensor(s) hold NaN or infinite values, e.g. {string.Join(", ", nonFinite.Take(5))}. " +
                "The checkpoint is corrupt or was saved from a diverged run: re-download or re-save it, or use an earlier checkpoint.");
        }

        if (missing.Count > 0)
        {
            throw new DpoSharpException($"{checkpoint.Directory}: the checkpoint lacks {missing.Count} weight(s) the {Config.ModelType} config needs, e.g. {string.Join(", ", missing.Take(5))}. Check that config.json belongs to these weights.");
        }

        var unexpected = checkpoint.Names.Where(n => !used.Contains(n) && !IsIgnorableCheckpointKey(n)).ToList();
        if (unexpected.Count > 0)
        {
            throw new DpoSharpException($"{checkpoint.Directory}: the checkpoint holds {unexpected.Count} tensor(s) the {Config.ModelType} config does not use, e.g. {string.Join(", ", unexpected.Take(5))}. Check that config.json belongs to these weights.");
        }
    }

    /// <summary>The tensors to save, with the keys transformers expects (tied lm_head omitted).</summary>
    /// <exception cref="DpoSharpException">The model carries LoRA adapters (save them as a PEFT adapter, or merge them).</exception>
    public virtual IReadOnlyList<(string Name, Tensor Tensor)> TensorsToSave()
    {
        var all = named_parameters().ToList();
        if (all.Any(kv => LoraAdapter.IsAdapterParameter(kv.name)))
        {
            throw new DpoSharpException("this model carries LoRA adapters, which a Hugging Face checkpoint cannot hold: save them as a PEFT adapter " +
                "(PeftAdapter.Save), or merge them into the weights first (LoraModel.Merge).");
        }

        return [.. all.Select(kv => (kv.name, (Tensor)kv.parameter))];
    }

    /// <summary>The parameters of the model itself: every parameter except those of LoRA adapters (which a
    /// Hugging Face checkpoint does not hold).</summary>
    private IEnumerable<(string name, TorchSharp.Modules.Parameter parameter)> BaseParameters() =>
        named_parameters().Where(kv => !LoraAdapter.IsAdapterParameter(kv.name));
}
