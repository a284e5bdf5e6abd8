using System.ComponentModel;
using DpoSharp.Losses;
using static DpoSharp.OptionChecks;

namespace DpoSharp.Training.Objectives;

/// <summary>
/// The preference objective of a DPO run: loss type(s) and their hyper-parameters, and how the reference model's
/// log-probs are obtained (TRL's <c>DPOConfig</c> names). Part of <see cref="DpoOptions.Objective"/>; checked by
/// <see cref="DpoOptions.Validate"/>.
/// </summary>
public sealed class DpoObjectiveOptions
{
    /// <summary>β: strength of the tie to the reference model (IPO's τ).</summary>
    /// <value>Default 0.1.</value>
    [Description("beta: deviation from the reference model (IPO: tau)")]
    public double Beta { get; set; } = 0.1;

    /// <summary>Loss type(s), TRL names (<see cref="LossTypes"/>, or any name added with
    /// <see cref="PreferenceLosses.Register"/>); several combine with <see cref="LossWeights"/>.</summary>
    /// <value>Default <c>[sigmoid]</c> (<see cref="LossTypes.Sigmoid"/>).</value>
    [Description("loss type(s), comma-separated: sigmoid, ipo, hinge, robust, …")]
    public List<string> LossType { get; set; } = [LossTypes.Sigmoid];

    /// <summary>One weight per loss in <see cref="LossType"/>; null: all 1.</summary>
    /// <value>Default null.</value>
    [Description("weights of the loss types, comma-separated")]
    public List<double>? LossWeights { get; set; }

    /// <summary>Label smoothing ε in [0, 0.5] (cDPO, robust, exo_pair, aot).</summary>
    /// <value>Default 0.</value>
    [Description("label smoothing in [0, 0.5] (cDPO, robust, exo_pair, aot)")]
    public double LabelSmoothing { get; set; }

    /// <summary>Train without a reference model (reference log-probs = 0).</summary>
    /// <value>Default false.</value>
    [Description("no reference model: reference log-probs are 0")]
    public bool ReferenceFree { get; set; }

    /// <summary>f-divergence: reverse_kl, forward_kl, js_divergence or alpha_divergence.</summary>
    /// <value>Default <c>reverse_kl</c>.</value>
    [Description("reverse_kl / forward_kl / js_divergence / alpha_divergence")]
    public string FDivergenceType { get; set; } = LossOptions.ReverseKl;

    /// <summary>α of the α-divergence.</summary>
    /// <value>Default 1.0.</value>
    [Description("alpha of alpha_divergence")]
    public double FAlphaDivergenceCoef { get; set; } = 1.0;

    /// <summary>τ of the discopop loss.</summary>
    /// <value>Default 0.05.</value>
    [Description("tau of the discopop loss")]
    public double DiscopopTau { get; set; } = 0.05;

    /// <summary>Weight of the chosen NLL term (RPO); null: none.</summary>
    /// <value>Default null.</value>
    [Description("weight of the NLL term on chosen completions (RPO)")]
    public double? RpoAlpha { get; set; }

    /// <summary>γ of <c>simpo</c>: the target reward margin.</summary>
    /// <value>Default 0.5.</value>
    [Description("target reward margin gamma of simpo")]
    public double SimpoGamma { get; set; } = 0.5;

    /// <summary>Weight of the chosen NLL term of <c>cpo</c> and <c>simpo</c> (TRL's default; the SimPO paper uses 0).</summary>
    /// <value>Default 1.0.</value>
    [Description("weight of the chosen NLL of cpo and simpo (SimPO paper: 0)")]
    public double CpoAlpha { get; set; } = 1.0;

    /// <summary>Weight pair losses by the policy's (length-normalised) probability of both completions (WPO).</summary>
    /// <value>Default false.</value>
    [Description("WPO weighting of pair losses")]
    public bool UseWeighting { get; set; }

    /// <summary>
    /// α of LD-DPO (length desensitisation): the policy's completion log-prob is the sum over the first ℓ completion
    /// tokens, ℓ = min(chosen, rejected tokens) of the pair, plus α × the sum over the rest; null: plain sums. As in
    /// TRL 0.28 the reference log-probs are plain sums. Tokens are counted from the completion's start (TRL 0.28
    /// counts positions from the start of the sequence, prompt included).
    /// </summary>
    /// <value>Default null (off).</value>
    [Description("LD-DPO: weight in [0, 1] of the policy's log-probs beyond the pair's shared completion length (null: off)")]
    public double? LdAlpha { get; set; }

    /// <summary>TR-DPO: every <see cref="RefModelSyncSteps"/> optimizer steps the reference weights become
    /// α·policy + (1 − α)·reference (α = <see cref="RefModelMixupAlpha"/>). Needs a reference model (the frozen copy
    /// or <c>ref_model</c>): not with LoRA, <c>precompute_ref_log_probs</c> or a reference-free loss.</summary>
    /// <value>Default false.</value>
    [Description("TR-DPO: mix the policy into the reference model every ref_model_sync_steps steps")]
    public bool SyncRefModel { get; set; }

    /// <summary>α of TR-DPO: the policy's share in the reference after a sync (<see cref="SyncRefModel"/>).</summary>
    /// <value>Default 0.6.</value>
    [Description("TR-DPO: policy share alpha in [0, 1] of the synced reference")]
    public double RefModelMixupAlpha { get; set; } = 0.6;

    /// <summary>τ of TR-DPO: optimizer steps between reference syncs (<see cref="SyncRefModel"/>).</summary>
    /// <value>Default 512.</value>
    [Description("TR-DPO: optimizer steps between reference syncs")]
    public int RefModelSyncSteps { get; set; } = 512;

    /// <summary>Compute reference log-probs once before training (cached on disk) instead of every step.</summary>
    /// <value>Default false.</value>
    [Description("compute reference log-probs once before training (cached)")]
    public bool PrecomputeRefLogProbs { get; set; }

    /// <summary>Batch size of the reference pre-computation; null: the train/eval batch size.</summary>
    /// <value>Default null.</value>
    [Description("batch size of the reference pre-computation")]
    public int? PrecomputeRefBatchSize { get; set; }

    /// <summary>Loss hyper-parameters from these options.</summary>
    public LossOptions ToLossOptions() => new()
    {
        LabelSmoothing = LabelSmoothing,
        ReferenceFree = ReferenceFree,
        FDivergenceType = FDivergenceType,
        FAlphaDivergenceCoef = FAlphaDivergenceCoef,
        DiscopopTau = DiscopopTau,
        RpoAlpha = RpoAlpha,
        SimpoGamma = SimpoGamma,
        CpoAlpha = CpoAlpha,
    };

    /// <summary>
    /// True when the loss compares the policy with a reference model: false with <see cref="ReferenceFree"/> or a
    /// reference-free loss type (<see cref="LossTypes.ReferenceFreeLosses"/>: <c>orpo</c>, <c>simpo</c>, <c>cpo</c>),
    /// and then no reference model is loaded or copied.
    /// </summary>
    public bool NeedsReference => !ReferenceFree && !LossType.Any(LossTypes.ReferenceFreeLosses.Contains);

    /// <summary>The (combined) loss these options select.</summary>
    public CombinedPreferenceLoss CreateLoss() => PreferenceLosses.Create(LossType, LossWeights, ToLossOptions());

    /// <summary>A deep copy.</summary>
    public DpoObjectiveOptions Clone()
    {
        var c = (DpoObjectiveOptions)MemberwiseClone();
        c.LossType = [.. LossType];
        c.LossWeights = LossWeights is null ? null : [.. LossWeights];
        return c;
    }

    /// <summary>Throws <see cref="DpoSharpException"/> naming the first bad option.</summary>
    internal void Validate()
    {
        Require(Finite(Beta) && Beta > 0, $"beta must be a positive number (got {Beta}).");
        Require(LossType.Count > 0, $"loss_type is empty; give at least one of {string.Join(", ", PreferenceLosses.Names)}.");
        foreach (var t in LossType)
        {
            if (!PreferenceLosses.IsKnown(t))
            {
                throw new DpoSharpException(PreferenceLosses.UnknownMessage(t));
            }
        }

        Require(LossType.Distinct().Count() == LossType.Count, $"loss_type lists a loss twice ({string.Join(", ", LossType)}).");
        if (LossWeights is not null)
        {
            Require(LossWeights.Count == LossType.Count, $"loss_weights has {LossWeights.Count} values but loss_type has {LossType.Count} losses; give one weight per loss.");
            Require(LossWeights.All(w => Finite(w) && w >= 0), $"loss_weights must be non-negative numbers (got {string.Join(", ", LossWeights)}).");
        }

        ToLossOptions().Validate();
        Require(!(LossType.Contains(LossTypes.Robust) && LabelSmoothing >= 0.5), $"label_smoothing must be below 0.5 for loss_type robust (got {LabelSmoothing}).");
        Require(!(ReferenceFree && PrecomputeRefLogProbs), "reference_free and precompute_ref_log_probs contradict each other; remove one.");
        if (LossType.FirstOrDefault(LossTypes.ReferenceFreeLosses.Contains) is { } free)
        {
            Require(LossType.Count == 1, $"loss_type {free} is reference-free and cannot be combined with other losses ({string.Join(", ", LossType)}); give it alone.");
            Require(!PrecomputeRefLogProbs, $"loss_type {free} uses no reference model, so precompute_ref_log_probs has nothing to compute; remove it.");
            Require(RpoAlpha is null, $"loss_type {free} has its own NLL term (cpo_alpha for cpo and simpo; always on for orpo); remove rpo_alpha.");
        }

        if (LdAlpha is { } ld)
        {
            Require(Finite(ld) && ld is >= 0 and <= 1, $"ld_alpha must be in [0, 1] (got {ld}); 1 is plain DPO, null turns it off.");
            Require(!LossType.Any(LossTypes.ReferenceFreeLosses.Contains), $"ld_alpha is a DPO option; loss_type {string.Join(",", LossType)} does not use it. Remove ld_alpha.");
        }

        Require(Finite(RefModelMixupAlpha) && RefModelMixupAlpha is >= 0 and <= 1, $"ref_model_mixup_alpha must be in [0, 1] (got {RefModelMixupAlpha}).");
        Require(RefModelSyncSteps >= 1, $"ref_model_sync_steps must be at least 1 (got {RefModelSyncSteps}).");
        if (SyncRefModel)
        {
            Require(NeedsReference, $"sync_ref_model mixes the policy into a reference model, but {(ReferenceFree ? "reference_free" : $"loss_type {string.Join(",", LossType)}")} uses none; remove sync_ref_model.");
            Require(!PrecomputeRefLogProbs, "sync_ref_model changes the reference model during training, so precomputed reference log-probs would be stale; remove precompute_ref_log_probs or sync_ref_model.");
        }
        else
        {
            Require(RefModelMixupAlpha == 0.6 && RefModelSyncSteps == 512, "ref_model_mixup_alpha and ref_model_sync_steps are used only with sync_ref_model; set sync_ref_model: true (--sync-ref-model) or remove them.");
        }

        Require(PrecomputeRefBatchSize is null or >= 1, $"precompute_ref_batch_size must be at least 1 (got {PrecomputeRefBatchSize}).");
    }
}
