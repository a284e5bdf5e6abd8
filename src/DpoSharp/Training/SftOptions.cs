using DpoSharp.Data;

namespace DpoSharp.Training;

/// <summary>
/// Every option of a supervised fine-tuning run, named as TRL's <c>SFTConfig</c> / transformers'
/// <c>TrainingArguments</c> (snake_case keys in config files, kebab-case flags of <c>dposharp sft</c>). Defaults are
/// TRL's <c>SFTConfig</c> ones: <c>learning_rate</c> 2e-5, <c>max_length</c> 1024, <c>completion_only_loss</c> true,
/// <c>logging_steps</c> 10. The options of every training run come from <see cref="TrainingOptions"/>; the SFT ones
/// are its <see cref="Data"/>, each also a flat property here. Check with <see cref="Validate"/>.
/// </summary>
public sealed class SftOptions : TrainingOptions
{
    /// <summary>The learning rate of <c>SFTConfig</c>.</summary>
    public const double DefaultLearningRate = 2e-5;

    /// <summary>Options with their defaults (<see cref="TrainingOptions.LearningRate"/> =
    /// <see cref="DefaultLearningRate"/>).</summary>
    public SftOptions()
    {
        LearningRate = DefaultLearningRate;
    }

    private SftOptions(TrainingOptions other, SftDataOptions data)
        : base(other)
    {
        Data = data;
    }

    /// <summary>The data and its tokenization.</summary>
    public SftDataOptions Data { get; } = new();

    // ---------------------------------------------------------------- Data

    /// <inheritdoc cref="DataSourceOptions.Dataset"/>
    public string? Dataset { get => Data.Dataset; set => Data.Dataset = value; }

    /// <inheritdoc cref="DataSourceOptions.EvalDataset"/>
    public string? EvalDataset { get => Data.EvalDataset; set => Data.EvalDataset = value; }

    /// <inheritdoc cref="DataSourceOptions.DatasetTrainSplit"/>
    public string? DatasetTrainSplit { get => Data.DatasetTrainSplit; set => Data.DatasetTrainSplit = value; }

    /// <inheritdoc cref="DataSourceOptions.DatasetTestSplit"/>
    public string DatasetTestSplit { get => Data.DatasetTestSplit; set => Data.DatasetTestSplit = value; }

    /// <inheritdoc cref="SftDataOptions.DatasetTextField"/>
    public string DatasetTextField { get => Data.DatasetTextField; set => Data.DatasetTextField = value; }

    /// <inheritdoc cref="SftDataOptions.MaxLength"/>
    public int? MaxLength { get => Data.MaxLength; set => Data.MaxLength = value; }

    /// <inheritdoc cref="SftDataOptions.CompletionOnlyLoss"/>
    public bool CompletionOnlyLoss { get => Data.CompletionOnlyLoss; set => Data.CompletionOnlyLoss = value; }

    // ---------------------------------------------------------------- conversions, validation, copies

    /// <summary>
    /// The SFT run <paramref name="options"/> describe: their run, optimizer, schedule, batching, checkpoint and
    /// logging options, their dataset names and <c>max_length</c> (as <see cref="SftTrainer"/>'s
    /// <see cref="DpoOptions"/> constructors have always used them); preference-only options are left out.
    /// </summary>
    public static SftOptions From(DpoOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new SftOptions(options, new SftDataOptions
        {
            Dataset = options.Dataset,
            EvalDataset = options.EvalDataset,
            DatasetTrainSplit = options.DatasetTrainSplit,
            DatasetTestSplit = options.DatasetTestSplit,
            MaxLength = options.MaxLength,
        });
    }

    /// <summary>
    /// Checks every option (the data, then the options of every run); throws <see cref="DpoSharpException"/> whose
    /// message names the option, the bad value and what is accepted.
    /// </summary>
    public override void Validate()
    {
        Data.Validate();
        base.Validate();
    }

    /// <summary>A deep copy.</summary>
    public SftOptions Clone() => new(this, Data.Clone());
}
