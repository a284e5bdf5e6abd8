using DpoSharp.Data;
using DpoSharp.Losses;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using DpoSharp.Training.Engine;
using static TorchSharp.torch;

namespace DpoSharp.Training.Objectives;

/// <summary>
/// Kahneman–Tversky optimisation as a training objective (TRL's <c>KTOTrainer</c>): unpaired examples with labels,
/// reference log-probs from a frozen model (or the LoRA policy's base), the KL reference point from the batch's
/// mismatched prompt/completion rows (policy and reference, both without gradients), an unpaired loss
/// (<see cref="IUnpairedLoss"/>: <c>kto</c>, <c>apo_zero_unpaired</c>) averaged over the batch's examples, and TRL's
/// KTO metrics: <c>rewards/chosen</c> and <c>logps/chosen</c> / <c>logits/chosen</c> averaged over desirable examples,
/// the <c>rejected</c> ones over undesirable examples, <c>rewards/margins</c> their difference, <c>kl</c> averaged over
/// batches.
/// </summary>
public sealed class KtoObjective : ITrainingObjective<KtoBatch>
{
    /// <summary>The count the loss is averaged over.</summary>
    public const string Examples = "examples";

    private const string Desirable = "desirable";
    private const string Undesirable = "undesirable";
    private const string Batches = "batches";

    private readonly DpoOptions _options;
    private ICausalLM? _refModel;
    private ICausalLM? _ownedRefModel;

    /// <summary>Creates the objective.</summary>
    /// <param name="policy">The model being trained.</param>
    /// <param name="refModel">A reference model (frozen here, not disposed), or null: the LoRA policy's base, else a
    /// frozen copy of the policy made when training begins.</param>
    /// <param name="options">Beta, loss type and the KTO weights.</param>
    public KtoObjective(ICausalLM policy, ICausalLM? refModel, DpoOptions options)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(options);
        if (refModel is not null && ReferenceEquals(refModel, policy))
        {
            throw new ArgumentException("the reference model must not be the policy itself; pass null to use a frozen copy.", nameof(refModel));
        }

        Policy = policy;
        _options = options;
        Loss = UnpairedLosses.Create(options.KtoLossType);
        if (refModel is not null)
        {
            _refModel = refModel;
            FrozenModelReference.Freeze(_refModel);
            options.Memory.ApplyTo(_refModel);
        }
    }

    /// <summary>The policy.</summary>
    public ICausalLM Policy { get; }

    /// <summary>The unpaired loss.</summary>
    public IUnpairedLoss Loss { get; }

    /// <summary>What the reference is: <c>frozen_model</c> or <c>adapters_disabled</c> (after <see cref="Begin"/>).</summary>
    public string ReferenceKind => _refModel is null && Policy.HasAdapters() ? "adapters_disabled" : "frozen_model";

    /// <inheritdoc/>
    public TrainingLossMetric TrainingLossMetric => TrainingLossMetric.FromStatistics;

    /// <inheritdoc/>
    public string? ExamplesPerSecondMetric => null;

    /// <inheritdoc/>
    public void Begin(ObjectiveState? resumed)
    {
        if (_refModel is null && !Policy.HasAdapters())
        {
            // A frozen copy of the starting policy, made before a checkpoint's weights are loaded.
            _ownedRefModel ??= DpoObjective.CopyModel(Policy, _options.Memory.TorchScalarType);
            _refModel = _ownedRefModel;
            FrozenModelReference.Freeze(_refModel);
        }
    }

    /// <inheritdoc/>
    public ObjectiveOutput Compute(KtoBatch batch, DataSplit split)
    {
        ArgumentNullException.ThrowIfNull(batch);
        int b = batch.ExampleCount;

        // Reference and KL rows first, without gradients, so their activations are freed before the policy's graph.
        var refLogps = ReferenceSums(batch);
        Tensor? kl = null;
        if (Loss.UsesKl)
        {
            var klRows = batch.KlRows ?? throw new InvalidOperationException("the kto loss needs the batch's KL rows.");
            var refKl = ReferenceSums(klRows);
            Tensor policyKl;
            using (no_grad())
            {
                policyKl = CompletionLogProbs.Forward(Policy, klRows).LogProbs.Sums.detach();
            }

            kl = KtoLoss.KlEstimate(policyKl, refKl);
        }

        var lp = CompletionLogProbs.Forward(Policy, batch).LogProbs;
        var output = Loss.Compute(new UnpairedLossInput(lp.Sums, refLogps, batch.Labels, kl, _options.Beta, _options.DesirableWeight, _options.UndesirableWeight));
        var lossSum = output.Losses.sum();
        var stats = new NamedStatistics();
        using (no_grad())
        {
            var desirable = batch.Labels.to(ScalarType.Float32);
            var undesirable = 1 - desirable;
            int nd = batch.LabelValues.Count(x => x);
            void Add(string name, Tensor sum, string per) => stats.Add(name, sum.to(ScalarType.Float32), per);
            Add("loss", lossSum.detach(), Examples);
            Add("rewards/chosen", (output.Rewards * desirable).sum(), Desirable);
            Add("rewards/rejected", (output.Rewards * undesirable).sum(), Undesirable);
            Add("logps/chosen", (lp.Sums.detach() * desirable).sum(), Desirable);
            Add("logps/rejected", (lp.Sums.detach() * undesirable).sum(), Undesirable);
            Add("logits/chosen", (lp.MeanLogits * desirable).sum(), Desirable);
            Add("logits/rejected", (lp.MeanLogits * undesirable).sum(), Undesirable);
            Add("kl", kl ?? zeros([]), Batches);
            stats.AddDifference("rewards/margins", "rewards/chosen", "rewards/rejected");
            stats.AddCount(Examples, b);
            stats.AddCount(Desirable, nd);
            stats.AddCount(Undesirable, b - nd);
            stats.AddCount(Batches, 1);
        }

        return new ObjectiveOutput(lossSum, stats);
    }

    /// <inheritdoc/>
    public ObjectiveState SaveState() => ObjectiveState.Empty;

    /// <inheritdoc/>
    public void Dispose()
    {
        _ownedRefModel?.Dispose();
        _ownedRefModel = null;
    }

    // (B) reference completion log-prob sums, no gradients, eval mode: the frozen model or the policy's base.
    private Tensor ReferenceSums(SequenceBatch rows)
    {
        using var _ = no_grad();
        if (_refModel is not null)
        {
            _refModel.Module.eval();
            return CompletionLogProbs.Forward(_refModel, rows).LogProbs.Sums.detach();
        }

        var module = Policy.Module;
        bool wasTraining = module.training;
        module.eval();
        try
        {
            using var disabled = Policy.DisableAdapters();
            return CompletionLogProbs.Forward(Policy, rows).LogProbs.Sums.detach();
        }
        finally
        {
            module.train(wasTraining);
        }
    }
}
