using System.ComponentModel;
using DpoSharp.Data;
using DpoSharp.Losses;
using DpoSharp.Training.Objectives;
using static DpoSharp.OptionChecks;

namespace DpoSharp.Training;

/// <summary>
/// Every option of a DPO run, named as TRL's <c>DPOConfig</c> / transformers' <c>TrainingArguments</c> where the
/// concept is the same (snake_case keys in config files such as <c>learning_rate</c>, kebab-case command-line flags
/// such as <c>--learning-rate</c>, read by the <c>dposharp</c> command). Defaults are TRL's unless documented
/// otherwise. The options of every training run come from <see cref="TrainingOptions"/>; the DPO ones are the
/// reference model, the preference <see cref="Data"/> and the <see cref="Objective"/>, each option also a flat property
/// here. Check with <see cref="Validate"/>.
/// </summary>
public sealed class DpoOptions : TrainingOptions
{
    /// <summary>Options with their defaults.</summary>
    public DpoOptions()
    {
    }

    private DpoOptions(DpoOptions other)
        : base(other)
    {
        RefModel = other.RefModel;
        Algorithm = other.Algorithm;
        Data = other.Data.Clone();
        Objective = other.Objective.Clone();
        Kto = other.Kto.Clone();
    }

    /// <summary>Reference model directory; null: a frozen copy of the starting policy.</summary>
    /// <value>Default null.</value>
    [Description("reference model directory (null: a frozen copy of the starting model)")]
    public string? RefModel { get; set; }

    /// <summary>
    /// The algorithm: <c>dpo</c> (pairs; every pairwise <c>loss_type</c>, ORPO/SimPO/CPO included) or <c>kto</c>
    /// (unpaired data, <see cref="KtoTrainer"/>; <c>loss_type</c> <c>kto</c> or <c>apo_zero_unpaired</c>).
    /// </summary>
    /// <value>Default <c>dpo</c>.</value>
    [Description("dpo (preference pairs) or kto (unpaired prompt/completion/label data)")]
    public TrainingAlgorithm Algorithm { get; set; }

    /// <summary>The preference data and its tokenization.</summary>
    public PreferenceDataOptions Data { get; } = new();

    /// <summary>The preference loss and the reference log-probs.</summary>
    public DpoObjectiveOptions Objective { get; } = new();

    /// <summary>The options only KTO has.</summary>
    public KtoObjectiveOptions Kto { get; } = new();

    // ---------------------------------------------------------------- Data

    /// <inheritdoc cref="DataSourceOptions.Dataset"/>
    public string? Dataset { get => Data.Dataset; set => Data.Dataset = value; }

    /// <inheritdoc cref="DataSourceOptions.EvalDataset"/>
    public string? EvalDataset { get => Data.EvalDataset; set => Data.EvalDataset = value; }

    /// <inheritdoc cref="DataSourceOptions.DatasetTrainSplit"/>
    public string? DatasetTrainSplit { get => Data.DatasetTrainSplit; set => Data.DatasetTrainSplit = value; }

    /// <inheritdoc cref="DataSourceOptions.DatasetTestSplit"/>
    public string DatasetTestSplit { get => Data.DatasetTestSplit; set => Data.DatasetTestSplit = value; }

    /// <inheritdoc cref="PreferenceDataOptions.PromptColumn"/>
    public string? PromptColumn { get => Data.PromptColumn; set => Data.PromptColumn = value; }

    /// <inheritdoc cref="PreferenceDataOptions.ChosenColumn"/>
    public string ChosenColumn { get => Data.ChosenColumn; set => Data.ChosenColumn = value; }

    /// <inheritdoc cref="PreferenceDataOptions.RejectedColumn"/>
    public string RejectedColumn { get => Data.RejectedColumn; set => Data.RejectedColumn = value; }

    /// <inheritdoc cref="PreferenceDataOptions.SystemColumn"/>
    public string SystemColumn { get => Data.SystemColumn; set => Data.SystemColumn = value; }

    /// <inheritdoc cref="PreferenceDataOptions.MaxLength"/>
    public int? MaxLength { get => Data.MaxLength; set => Data.MaxLength = value; }

    /// <inheritdoc cref="PreferenceDataOptions.MaxPromptLength"/>
    public int? MaxPromptLength { get => Data.MaxPromptLength; set => Data.MaxPromptLength = value; }

    /// <inheritdoc cref="PreferenceDataOptions.MaxCompletionLength"/>
    public int? MaxCompletionLength { get => Data.MaxCompletionLength; set => Data.MaxCompletionLength = value; }

    /// <inheritdoc cref="PreferenceDataOptions.TruncationMode"/>
    public TruncationMode TruncationMode { get => Data.TruncationMode; set => Data.TruncationMode = value; }

    /// <inheritdoc cref="PreferenceDataOptions.PadToMultipleOf"/>
    public int? PadToMultipleOf { get => Data.PadToMultipleOf; set => Data.PadToMultipleOf = value; }

    /// <inheritdoc cref="PreferenceDataOptions.PaddingFree"/>
    public bool PaddingFree { get => Data.PaddingFree; set => Data.PaddingFree = value; }

    /// <inheritdoc cref="PreferenceDataOptions.PrefixSharing"/>
    public bool PrefixSharing { get => Data.PrefixSharing; set => Data.PrefixSharing = value; }

    // ---------------------------------------------------------------- Objective

    /// <inheritdoc cref="DpoObjectiveOptions.Beta"/>
    public double Beta { get => Objective.Beta; set => Objective.Beta = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.LossType"/>
    public List<string> LossType { get => Objective.LossType; set => Objective.LossType = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.LossWeights"/>
    public List<double>? LossWeights { get => Objective.LossWeights; set => Objective.LossWeights = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.LabelSmoothing"/>
    public double LabelSmoothing { get => Objective.LabelSmoothing; set => Objective.LabelSmoothing = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.ReferenceFree"/>
    public bool ReferenceFree { get => Objective.ReferenceFree; set => Objective.ReferenceFree = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.FDivergenceType"/>
    public string FDivergenceType { get => Objective.FDivergenceType; set => Objective.FDivergenceType = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.FAlphaDivergenceCoef"/>
    public double FAlphaDivergenceCoef { get => Objective.FAlphaDivergenceCoef; set => Objective.FAlphaDivergenceCoef = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.DiscopopTau"/>
    public double DiscopopTau { get => Objective.DiscopopTau; set => Objective.DiscopopTau = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.RpoAlpha"/>
    public double? RpoAlpha { get => Objective.RpoAlpha; set => Objective.RpoAlpha = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.SimpoGamma"/>
    public double SimpoGamma { get => Objective.SimpoGamma; set => Objective.SimpoGamma = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.CpoAlpha"/>
    public double CpoAlpha { get => Objective.CpoAlpha; set => Objective.CpoAlpha = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.UseWeighting"/>
    public bool UseWeighting { get => Objective.UseWeighting; set => Objective.UseWeighting = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.LdAlpha"/>
    public double? LdAlpha { get => Objective.LdAlpha; set => Objective.LdAlpha = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.SyncRefModel"/>
    public bool SyncRefModel { get => Objective.SyncRefModel; set => Objective.SyncRefModel = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.RefModelMixupAlpha"/>
    public double RefModelMixupAlpha { get => Objective.RefModelMixupAlpha; set => Objective.RefModelMixupAlpha = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.RefModelSyncSteps"/>
    public int RefModelSyncSteps { get => Objective.RefModelSyncSteps; set => Objective.RefModelSyncSteps = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.PrecomputeRefLogProbs"/>
    public bool PrecomputeRefLogProbs { get => Objective.PrecomputeRefLogProbs; set => Objective.PrecomputeRefLogProbs = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.PrecomputeRefBatchSize"/>
    public int? PrecomputeRefBatchSize { get => Objective.PrecomputeRefBatchSize; set => Objective.PrecomputeRefBatchSize = value; }

    /// <inheritdoc cref="KtoObjectiveOptions.DesirableWeight"/>
    public double DesirableWeight { get => Kto.DesirableWeight; set => Kto.DesirableWeight = value; }

    /// <inheritdoc cref="KtoObjectiveOptions.UndesirableWeight"/>
    public double UndesirableWeight { get => Kto.UndesirableWeight; set => Kto.UndesirableWeight = value; }

    /// <summary>
    /// The KTO loss of a <c>kto</c> run: <c>loss_type</c> when it is <c>kto</c> or <c>apo_zero_unpaired</c>;
    /// <c>kto</c> when <c>loss_type</c> keeps the DPO default (<c>sigmoid</c>).
    /// </summary>
    public string KtoLossType => LossType is [LossTypes.Sigmoid] ? UnpairedLosses.Kto : LossType.FirstOrDefault() ?? UnpairedLosses.Kto;

    // ---------------------------------------------------------------- conversions, validation, copies

    /// <inheritdoc cref="DpoObjectiveOptions.ToLossOptions"/>
    public LossOptions ToLossOptions() => Objective.ToLossOptions();

    /// <inheritdoc cref="PreferenceDataOptions.ToDatasetOptions"/>
    public DatasetOptions ToDatasetOptions(string? split = null) => Data.ToDatasetOptions(split);

    /// <inheritdoc cref="PreferenceDataOptions.ToTokenizationOptions"/>
    public TokenizationOptions ToTokenizationOptions() => Data.ToTokenizationOptions();

    /// <inheritdoc cref="DpoObjectiveOptions.CreateLoss"/>
    public CombinedPreferenceLoss CreateLoss() => Objective.CreateLoss();

    /// <summary>
    /// Checks every option (the preference data, the objective, then the options of every run); throws
    /// <see cref="DpoSharpException"/> whose message names the option, the bad value and what is accepted. Call
    /// after loading and applying overrides, before any work.
    /// </summary>
    public override void Validate()
    {
        Data.Validate();
        if (Algorithm == TrainingAlgorithm.Kto)
        {
            ValidateKto();
        }
        else
        {
            if (LossType.FirstOrDefault(UnpairedLosses.Names.Contains) is { } unpaired)
            {
                throw new DpoSharpException($"loss_type {unpaired} is a KTO loss for unpaired data: set algorithm: kto (--algorithm kto), or pick a pairwise loss.");
            }

            Require(Kto.IsDefault, "desirable_weight and undesirable_weight are KTO options; set algorithm: kto (--algorithm kto) or remove them.");
            Objective.Validate();
        }

        Require(!(ReferenceFree && RefModel is not null), "reference_free and ref_model contradict each other; remove one.");
        Require(!(SyncRefModel && TrainsAdapters), "sync_ref_model mixes the full policy weights into a reference model, but with use_peft/adapter only LoRA adapters train (TRL refuses sync_ref_model with PEFT too); remove sync_ref_model or train without LoRA.");
        Require(Objective.NeedsReference || RefModel is null, $"loss_type {string.Join(",", LossType)} uses no reference model; remove ref_model.");
        base.Validate();
    }

    /// <summary>A deep copy.</summary>
    public DpoOptions Clone() => new(this);

    // algorithm: kto — its own options, and the DPO-only ones refused unless at their defaults.
    private void ValidateKto()
    {
        Require(Finite(Beta) && Beta > 0, $"beta must be a positive number (got {Beta}).");
        Require(LossType.Count == 1 && (LossType[0] == LossTypes.Sigmoid || UnpairedLosses.Names.Contains(LossType[0])),
            $"algorithm kto takes loss_type {string.Join(" or ", UnpairedLosses.Names)} (got {string.Join(",", LossType)}).");
        Kto.Validate();
        var defaults = new DpoObjectiveOptions();
        var dpoOnly = new List<string>();
        void Dpo(bool changed, string name)
        {
            if (changed)
            {
                dpoOnly.Add(name);
            }
        }

        Dpo(LossWeights is not null, "loss_weights");
        Dpo(LabelSmoothing != defaults.LabelSmoothing, "label_smoothing");
        Dpo(ReferenceFree, "reference_free");
        Dpo(FDivergenceType != defaults.FDivergenceType, "f_divergence_type");
        Dpo(FAlphaDivergenceCoef != defaults.FAlphaDivergenceCoef, "f_alpha_divergence_coef");
        Dpo(DiscopopTau != defaults.DiscopopTau, "discopop_tau");
        Dpo(RpoAlpha is not null, "rpo_alpha");
        Dpo(SimpoGamma != defaults.SimpoGamma, "simpo_gamma");
        Dpo(CpoAlpha != defaults.CpoAlpha, "cpo_alpha");
        Dpo(UseWeighting, "use_weighting");
        Dpo(LdAlpha is not null, "ld_alpha");
        Dpo(SyncRefModel, "sync_ref_model");
        Dpo(RefModelMixupAlpha != defaults.RefModelMixupAlpha, "ref_model_mixup_alpha");
        Dpo(RefModelSyncSteps != defaults.RefModelSyncSteps, "ref_model_sync_steps");
        Dpo(PrecomputeRefLogProbs, "precompute_ref_log_probs");
        Dpo(PrecomputeRefBatchSize is not null, "precompute_ref_batch_size");
        Dpo(PaddingFree, "padding_free");
        Require(dpoOnly.Count == 0, $"{string.Join(", ", dpoOnly)}: DPO option(s) that algorithm kto does not use; remove them or set algorithm: dpo.");
        Require(KtoLossType != UnpairedLosses.Kto || PerDeviceTrainBatchSize > 1,
            "loss_type kto estimates its KL reference point from the other examples of a batch: per_device_train_batch_size must be at least 2 (TRL refuses 1 too).");
    }
}
