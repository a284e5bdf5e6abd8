using DpoSharp.Data;
using DpoSharp.Losses;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using DpoSharp.Training.Engine;
using static TorchSharp.torch;

namespace DpoSharp.Training.Objectives;

/// <summary>
/// Direct Preference Optimization and its pairwise family as a training objective: one policy forward over chosen
/// and rejected rows together, reference log-probs from a frozen model / a precomputed cache / nothing, a pairwise
/// loss (<see cref="IPreferenceLoss"/>), and TRL's statistics (<c>rewards/chosen|rejected|accuracies|margins</c>,
/// <c>logps/…</c>, <c>logits/…</c>, <c>nll_loss</c>) averaged per pair.
/// </summary>
public sealed class DpoObjective : ITrainingObjective<PreferenceBatch>
{
    /// <summary>The count DPO statistics are averaged over.</summary>
    public const string Pairs = "pairs";

    private const string RefLogpsGroup = "ref_logps-";

    /// <summary>The checkpoint group of the TR-DPO reference weights (<c>ref_model.safetensors</c>).</summary>
    internal const string RefModelGroup = "ref_model";

    private readonly IReadOnlyList<TokenizedPair> _train;
    private readonly IReadOnlyList<TokenizedPair>? _eval;
    private readonly PreferenceCollator _collator;
    private readonly DpoOptions _options;
    private readonly bool _ownsLoss;
    private ICausalLM? _refModel;
    private ICausalLM? _ownedRefModel;
    private IReferenceLogProbs? _trainRef;
    private IReferenceLogProbs? _evalRef;
    private (string Name, Tensor Reference, Tensor Policy)[] _syncPairs = [];

    /// <summary>Creates the objective.</summary>
    /// <param name="policy">The model being trained.</param>
    /// <param name="refModel">A reference model (frozen here, not disposed), or null: a frozen copy of the policy made
    /// when training begins, unless the options make a reference model unnecessary.</param>
    /// <param name="options">Beta, loss, reference and batching options.</param>
    /// <param name="train">Training pairs (for precomputing reference log-probs).</param>
    /// <param name="eval">Evaluation pairs, or null.</param>
    /// <param name="collator">The collator of the run's batches.</param>
    /// <param name="loss">The loss; null: the one the options name (owned and disposed here).</param>
    public DpoObjective(ICausalLM policy, ICausalLM? refModel, DpoOptions options, IReadOnlyList<TokenizedPair> train, IReadOnlyList<TokenizedPair>? eval, PreferenceCollator collator, IPreferenceLoss? loss = null)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(collator);
        if (refModel is not null && ReferenceEquals(refModel, policy))
        {
            throw new ArgumentException("the reference model must not be the policy itself; pass null to use a frozen copy.", nameof(refModel));
        }

        Policy = policy;
        _options = options;
        _train = train;
        _eval = eval is { Count: > 0 } ? eval : null;
        _collator = collator;
        _ownsLoss = loss is null;
        Loss = loss ?? options.CreateLoss();
        if (options.Objective.NeedsReference && refModel is not null)
        {
            _refModel = refModel;
            FrozenModelReference.Freeze(_refModel);
            options.Memory.ApplyTo(_refModel); // chunked log-probs for the reference forward too
        }
    }

    /// <summary>The policy.</summary>
    public ICausalLM Policy { get; }

    /// <summary>The preference loss.</summary>
    public IPreferenceLoss Loss { get; }

    /// <inheritdoc/>
    public TrainingLossMetric TrainingLossMetric => TrainingLossMetric.FromStatistics;

    /// <inheritdoc/>
    public string? ExamplesPerSecondMetric => "pairs_per_second";

    /// <summary>A custom source of reference log-probs (not disposed here) used instead of the one the options select.</summary>
    public IReferenceLogProbs? ReferenceLogProbs { get; set; }

    /// <summary>Directory of the precomputed reference cache; null: output_dir (rank 0 only).</summary>
    public string? ReferenceCacheDir { get; set; }

    /// <summary>Tokenization settings folded into the precomputed-reference cache key.</summary>
    public string TokenizationKey { get; set; } = "";

    /// <summary>This process's rank (only rank 0 writes the reference cache into output_dir).</summary>
    public int Rank { get; set; }

    /// <summary>The data-parallel processes: precomputed reference log-probs are computed in parallel (each rank its
    /// share of the batches) and gathered. Default: one process.</summary>
    public IProcessGroup ProcessGroup { get; set; } = SingleProcessGroup.Instance;

    /// <summary>The reference provider of the training data (built by <see cref="Begin"/>).</summary>
    public IReferenceLogProbs? TrainReference => _trainRef;

    /// <inheritdoc/>
    public void Begin(ObjectiveState? resumed)
    {
        DisposeReferences();
        _trainRef = BuildReference(_train, resumed, "train");
        _evalRef = _eval is null ? null : BuildReference(_eval, resumed, "eval");
        _syncPairs = _options.SyncRefModel ? SyncPairs(resumed) : [];
        if (Loss is IStatefulPreferenceLoss s && resumed is { Scalars.Count: > 0 })
        {
            s.LoadState(resumed.Scalars);
        }
    }

    /// <inheritdoc/>
    public ObjectiveOutput Compute(PreferenceBatch batch, DataSplit split)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var reference = split == DataSplit.Train
            ? _trainRef ?? throw new InvalidOperationException("Begin must run before training batches are computed.")
            : _evalRef ??= BuildReference(_eval ?? [], resumed: null, "eval");
        int p = batch.PairCount;

        // Reference first (no grad, eval mode, no random draws): its transient activations and logits are freed
        // before the policy's forward builds the autograd graph, so the two peaks do not add up.
        var refLogps = reference.Compute(batch, Policy.Device);
        // LD-DPO weights the policy's log-probs only (TRL 0.28: not the reference's).
        var ldWeights = _options.LdAlpha is { } ld ? LengthDesensitization.TokenWeights(batch.CompletionMask, p, ld, batch.SegmentIds) : null;   // (B, T)
        var forward = CompletionLogProbs.Forward(Policy, batch, _options.UseWeighting ? CompletionStatistics.WpoTerms : CompletionStatistics.None, ldWeights);
        var lp = forward.LogProbs;
        var input = new PreferenceLossInput(
            lp.Sums[..p],
            lp.Sums[p..],
            refLogps?.Chosen,
            refLogps?.Rejected,
            lp.TokenCounts[..p],
            lp.TokenCounts[p..],
            _options.Beta)
        {
            PairWeights = forward.WpoTermSums is { } wpo ? WpoWeights.FromTermSums(wpo, lp.TokenCounts) : null,
        };
        var output = Loss.Compute(input);
        var lossSum = output.Losses.sum();
        var stats = new NamedStatistics();
        using (no_grad())
        {
            var cr = output.ChosenRewards.detach();
            var rr = output.RejectedRewards.detach();
            void Add(string name, Tensor sum) => stats.Add(name, sum.to(ScalarType.Float32), Pairs);
            Add("loss", lossSum.detach());
            Add("rewards/chosen", cr.sum());
            Add("rewards/rejected", rr.sum());
            Add("rewards/accuracies", cr.gt(rr).to(ScalarType.Float32).sum());
            Add("rewards/margins", (cr - rr).sum());
            Add("logps/chosen", lp.Sums[..p].detach().sum());
            Add("logps/rejected", lp.Sums[p..].detach().sum());
            Add("logits/chosen", lp.MeanLogits[..p].sum());
            Add("logits/rejected", lp.MeanLogits[p..].sum());
            if (output.NllLoss is not null)
            {
                // nll_loss is a batch mean: weight it by the pair count so the window mean is pair-weighted.
                Add("nll_loss", output.NllLoss.detach().to(ScalarType.Float32) * p);
            }

            foreach (var (name, perPair) in output.PairStatistics ?? new Dictionary<string, Tensor>())
            {
                Add(name, perPair.detach().sum());
            }

            stats.AddCount(Pairs, p);
        }

        return new ObjectiveOutput(lossSum, stats);
    }

    /// <inheritdoc/>
    public ObjectiveState SaveState()
    {
        var scalars = Loss is IStatefulPreferenceLoss s ? new Dictionary<string, double>(s.SaveState()) : new Dictionary<string, double>();
        var groups = new Dictionary<string, IReadOnlyDictionary<string, Tensor>>(StringComparer.Ordinal);
        foreach (var (name, reference) in new[] { ("train", _trainRef), ("eval", _evalRef) })
        {
            if (reference is PrecomputedReference pre)
            {
                groups[RefLogpsGroup + name] = new Dictionary<string, Tensor>
                {
                    ["chosen"] = tensor(pre.Chosen.ToArray()).DetachFromDisposeScope(),
                    ["rejected"] = tensor(pre.Rejected.ToArray()).DetachFromDisposeScope(),
                };
            }
        }

        if (_syncPairs.Length > 0)
        {
            // Handles onto the reference weights (no copy on CPU): the caller disposes the handles, not the weights.
            groups[RefModelGroup] = _syncPairs.ToDictionary(x => x.Name, x => x.Reference.detach().cpu().DetachFromDisposeScope(), StringComparer.Ordinal);
        }

        return new ObjectiveState(scalars, groups);
    }

    /// <summary>TR-DPO (<see cref="DpoObjectiveOptions.SyncRefModel"/>): every <c>ref_model_sync_steps</c> steps the
    /// reference weights become α·policy + (1 − α)·reference, as TRL's <c>SyncRefModelCallback</c> does.</summary>
    public void OptimizerStepCompleted(int globalStep)
    {
        if (_syncPairs.Length == 0 || globalStep % _options.RefModelSyncSteps != 0)
        {
            return;
        }

        double alpha = _options.RefModelMixupAlpha;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (_, reference, policy) in _syncPairs)
        {
            reference.mul_(1.0 - alpha).add_(policy, alpha: alpha);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        DisposeReferences();
        _ownedRefModel?.Dispose();
        _ownedRefModel = null;
        if (_ownsLoss)
        {
            (Loss as IDisposable)?.Dispose();
        }
    }

    private IReferenceLogProbs BuildReference(IReadOnlyList<TokenizedPair> data, ObjectiveState? resumed, string cacheName)
    {
        if (ReferenceLogProbs is { } custom)
        {
            return custom;
        }

        if (!_options.Objective.NeedsReference)
        {
            return new NoReference();
        }

        if (!_options.PrecomputeRefLogProbs)
        {
            // A LoRA policy without a reference model: its base, adapters disabled (as TRL with a PEFT model).
            if (_refModel is null && Policy.HasAdapters())
            {
                return new AdaptersDisabledReference(Policy);
            }

            if (_refModel is null)
            {
                // The default reference: a frozen copy of the policy, made once, before any training or checkpoint
                // loading changes it.
                _ownedRefModel = CopyModel(Policy, _options.Memory.TorchScalarType);
                _refModel = _ownedRefModel;
                FrozenModelReference.Freeze(_refModel);
            }

            return new FrozenModelReference(_refModel);
        }

        // Resuming without a reference model: the policy has moved on, so use the values the checkpoint carries.
        if (resumed is not null && _refModel is null)
        {
            if (resumed.TensorGroups.TryGetValue(RefLogpsGroup + cacheName, out var t))
            {
                return PrecomputedReference.FromCheckpoint(t, data.Count, Path.Combine(resumed.Source ?? "checkpoint", RefLogpsGroup + cacheName + ".safetensors"));
            }

            throw new DpoSharpException($"{resumed.Source}: the checkpoint has no {RefLogpsGroup}{cacheName}.safetensors; precomputed reference log-probs cannot be recomputed from a trained policy. Pass the starting model as the reference model.");
        }

        var cacheDir = ReferenceCacheDir ?? (_options.OutputDir.Length > 0 ? _options.OutputDir : null);
        if (Rank != 0 && ReferenceCacheDir is null)
        {
            cacheDir = null;
        }

        int batch = _options.PrecomputeRefBatchSize ?? _options.PerDeviceEvalBatchSize;
        using var baseModel = _refModel is null ? Policy.DisableAdapters() : null; // a LoRA policy's reference is its base
        return PrecomputedReference.Create(_refModel ?? Policy, data, _collator, batch, cacheDir, TokenizationKey + "|" + cacheName, ProcessGroup);
    }

    // The reference and policy parameters TR-DPO mixes, paired by name; on resume the checkpoint's reference weights
    // replace the starting ones.
    private (string Name, Tensor Reference, Tensor Policy)[] SyncPairs(ObjectiveState? resumed)
    {
        if (ReferenceLogProbs is not null || Policy.HasAdapters() || _trainRef is not FrozenModelReference || _refModel is null)
        {
            throw new DpoSharpException("sync_ref_model needs a frozen reference model (the copy of the policy, or ref_model) to mix the policy into; it does not work with LoRA adapters, precomputed, custom or no reference log-probs. Remove sync_ref_model.");
        }

        var policy = Policy.Module.named_parameters().ToDictionary(x => x.name, x => (Tensor)x.parameter, StringComparer.Ordinal);
        var pairs = new List<(string, Tensor, Tensor)>();
        foreach (var (name, reference) in _refModel.Module.named_parameters())
        {
            if (!policy.TryGetValue(name, out var p) || !p.shape.SequenceEqual(reference.shape))
            {
                throw new DpoSharpException($"sync_ref_model: the reference model's parameter {name} ({string.Join('x', reference.shape)}) has no counterpart of that shape in the policy; the reference must have the policy's architecture and sizes. Remove sync_ref_model or pass a matching ref_model.");
            }

            pairs.Add((name, reference, p));
        }

        if (pairs.Count != policy.Count)
        {
            throw new DpoSharpException($"sync_ref_model: the reference model has {pairs.Count} parameters, the policy {policy.Count}; the reference must have the policy's architecture. Remove sync_ref_model or pass a matching ref_model.");
        }

        if (resumed is not null)
        {
            if (!resumed.TensorGroups.TryGetValue(RefModelGroup, out var saved))
            {
                throw new DpoSharpException($"{resumed.Source}: the checkpoint has no {RefModelGroup}.safetensors (it was saved without sync_ref_model), so the synced reference cannot be restored. Resume without sync_ref_model, or start a new run.");
            }

            using var noGrad = no_grad();
            foreach (var (name, reference, _) in pairs)
            {
                if (!saved.TryGetValue(name, out var t) || !t.shape.SequenceEqual(reference.shape))
                {
                    throw new DpoSharpException($"{resumed.Source}: {RefModelGroup}.safetensors lacks {name} or has another shape; the checkpoint belongs to another model.");
                }

                reference.copy_(t);
            }
        }

        return [.. pairs];
    }

    private void DisposeReferences()
    {
        // A caller's ReferenceLogProbs is the caller's to dispose.
        if (!ReferenceEquals(_trainRef, ReferenceLogProbs))
        {
            _trainRef?.Dispose();
        }

        if (!ReferenceEquals(_evalRef, _trainRef) && !ReferenceEquals(_evalRef, ReferenceLogProbs))
        {
            _evalRef?.Dispose();
        }

        _trainRef = null;
        _evalRef = null;
    }

    // The frozen copy in torch_dtype (bf16 halves it; fp32 keeps the policy's dtype).
    internal static ICausalLM CopyModel(ICausalLM model, TorchSharp.torch.ScalarType dtype) => model is CausalLMBase
        ? ModelLoader.Copy(model, dtype: dtype == TorchSharp.torch.ScalarType.Float32 ? null : dtype)
        : throw new DpoSharpException("no reference model given and this model type cannot be copied: pass a reference model (--ref-model), or set precompute_ref_log_probs or reference_free.");
}
