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
        Data = other.Data.Clone();
        Objective = other.Objective.Clone();
    }

    /// <summary>Reference model directory; null: a frozen copy of the starting policy.</summary>
    /// <value>Default null.</value>
    [Description("reference model directory (null: a frozen copy of the starting model)")]
    public string? RefModel { get; set; }

    /// <summary>The preference data and its tokenization.</summary>
    public PreferenceDataOptions Data { get; } = new();

    /// <summary>The preference loss and the reference log-probs.</summary>
    public DpoObjectiveOptions Objective { get; } = new();

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

    /// <inheritdoc cref="DpoObjectiveOptions.UseWeighting"/>
    public bool UseWeighting { get => Objective.UseWeighting; set => Objective.UseWeighting = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.PrecomputeRefLogProbs"/>
    public bool PrecomputeRefLogProbs { get => Objective.PrecomputeRefLogProbs; set => Objective.PrecomputeRefLogProbs = value; }

    /// <inheritdoc cref="DpoObjectiveOptions.PrecomputeRefBatchSize"/>
    public int? PrecomputeRefBatchSize { get => Objective.PrecomputeRefBatchSize; set => Objective.PrecomputeRefBatchSize = value; }

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
        Objective.Validate();
        Require(!(ReferenceFree && RefModel is not null), "reference_free and ref_model contradict each other; remove one.");
        base.Validate();
    }

    /// <summary>A deep copy.</summary>
    public DpoOptions Clone() => new(this);
}
