using System.ComponentModel;

namespace DpoSharp.Data;

/// <summary>
/// Where a run's data comes from (TRL's <c>ScriptArguments</c> names): the training and evaluation files or dataset
/// folders and their splits. Shared by <see cref="PreferenceDataOptions"/> and <see cref="SftDataOptions"/>.
/// </summary>
public abstract class DataSourceOptions
{
    /// <summary>Training data: a file (JSONL, JSON, Parquet, CSV/TSV) or a dataset folder.</summary>
    /// <value>Default null (required by <c>dposharp train</c> and <c>dposharp sft</c>).</value>
    [Description("training data: file (jsonl/json/parquet/csv/tsv) or dataset directory")]
    public string? Dataset { get; set; }

    /// <summary>Evaluation data; null: the <see cref="DatasetTestSplit"/> of <see cref="Dataset"/> when it has one.</summary>
    /// <value>Default null.</value>
    [Description("evaluation data (null: the test split of dataset, if any)")]
    public string? EvalDataset { get; set; }

    /// <summary>Split used for training when <see cref="Dataset"/> is a dataset folder with splits.</summary>
    /// <value>Default null: <c>train</c> when present, else the only split.</value>
    [Description("split of dataset used for training (null: train, else the only split)")]
    public string? DatasetTrainSplit { get; set; }

    /// <summary>Split used for evaluation when <see cref="Dataset"/> is a dataset folder with splits.</summary>
    /// <value>Default <c>test</c>.</value>
    [Description("split of dataset used for evaluation")]
    public string DatasetTestSplit { get; set; } = "test";
}
