using System.ComponentModel;
using static DpoSharp.OptionChecks;

namespace DpoSharp.Data;

/// <summary>
/// The data of a supervised fine-tuning run and how it is tokenized (TRL's <c>SFTConfig</c> / <c>ScriptArguments</c>
/// names). Rows are prompt-completion (<c>prompt</c> and <c>completion</c> columns, as TRL) or language-modeling text
/// (<see cref="DatasetTextField"/>). Part of <see cref="Training.SftOptions.Data"/>; checked by
/// <see cref="Training.SftOptions.Validate"/>.
/// </summary>
public sealed class SftDataOptions : DataSourceOptions
{
    /// <summary>
    /// Column holding the text of language-modeling rows (rows without <c>prompt</c> and <c>completion</c>); the loss
    /// covers every token of the text.
    /// </summary>
    /// <value>Default <c>text</c> (TRL).</value>
    [Description("text column of language-modeling rows (rows without prompt/completion)")]
    public string DatasetTextField { get; set; } = "text";

    /// <summary>Maximum tokens of prompt + completion (or text); longer rows are cut (prompt-completion rows keep
    /// the end of the prompt and the start of the completion). Null: no limit.</summary>
    /// <value>Default 1024 (TRL).</value>
    [Description("max tokens of prompt + completion, or of a text row (null: no limit)")]
    public int? MaxLength { get; set; } = 1024;

    /// <summary>
    /// Train on the completion tokens of prompt-completion rows only (prompt tokens are context); false: on the prompt
    /// tokens too. Language-modeling rows always train on every token.
    /// </summary>
    /// <value>Default true (TRL's default for prompt-completion data).</value>
    [Description("loss on completion tokens only (false: on prompt tokens too)")]
    public bool CompletionOnlyLoss { get; set; } = true;

    /// <summary>A copy.</summary>
    public SftDataOptions Clone() => (SftDataOptions)MemberwiseClone();

    /// <summary>Throws <see cref="DpoSharpException"/> naming the first bad option.</summary>
    internal void Validate()
    {
        Require(MaxLength is null or >= 2, $"max_length must be at least 2 tokens, or null for no limit (got {MaxLength}).");
        Require(!string.IsNullOrWhiteSpace(DatasetTextField), "dataset_text_field must name a column.");
        Require(DatasetTrainSplit is null || !string.IsNullOrWhiteSpace(DatasetTrainSplit), "dataset_train_split must name a split, or be null.");
        Require(!string.IsNullOrWhiteSpace(DatasetTestSplit), "dataset_test_split must name a split.");
    }
}
