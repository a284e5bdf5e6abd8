using System.ComponentModel;
using static DpoSharp.OptionChecks;

namespace DpoSharp.Data;

/// <summary>
/// The preference data of a run and how it is tokenized (TRL's <c>DPOConfig</c> / <c>ScriptArguments</c> names).
/// Part of <see cref="Training.DpoOptions.Data"/>; checked by <see cref="Training.DpoOptions.Validate"/>.
/// </summary>
public sealed class PreferenceDataOptions : DataSourceOptions
{
    /// <summary>Column holding the prompt (text or a message list).</summary>
    /// <value>Default null: <c>prompt</c> when present, else <c>conversations</c>, else the shared beginning of chosen
    /// and rejected.</value>
    [Description("prompt column (null: prompt, else conversations, else implicit)")]
    public string? PromptColumn { get; set; }

    /// <summary>Column holding the preferred completion.</summary>
    /// <value>Default <c>chosen</c>.</value>
    [Description("chosen (preferred) completion column")]
    public string ChosenColumn { get; set; } = "chosen";

    /// <summary>Column holding the dispreferred completion.</summary>
    /// <value>Default <c>rejected</c>.</value>
    [Description("rejected completion column")]
    public string RejectedColumn { get; set; } = "rejected";

    /// <summary>Optional column with a system text (used when present, as truthy-dpo's <c>system</c>).</summary>
    /// <value>Default <c>system</c>.</value>
    [Description("optional system-text column")]
    public string SystemColumn { get; set; } = "system";

    /// <summary>Maximum tokens of prompt + completion; null: no limit.</summary>
    /// <value>Default 1024.</value>
    [Description("max tokens of prompt + completion (null: no limit)")]
    public int? MaxLength { get; set; } = 1024;

    /// <summary>Maximum prompt tokens (prompts are cut from the left); null: no limit.</summary>
    /// <value>Default 512.</value>
    [Description("max prompt tokens (null: no limit)")]
    public int? MaxPromptLength { get; set; } = 512;

    /// <summary>Maximum completion tokens; null: no limit.</summary>
    /// <value>Default null.</value>
    [Description("max completion tokens (null: no limit)")]
    public int? MaxCompletionLength { get; set; }

    /// <summary>Which end of an over-long prompt to keep: <c>keep_end</c> or <c>keep_start</c>.</summary>
    /// <value>Default <see cref="TruncationMode.KeepEnd"/> (<c>keep_end</c>).</value>
    [Description("keep_end / keep_start")]
    public TruncationMode TruncationMode { get; set; } = TruncationMode.KeepEnd;

    /// <summary>Pad batches to a multiple of this many tokens; null: to the longest row.</summary>
    /// <value>Default null.</value>
    [Description("pad sequence length to a multiple of N")]
    public int? PadToMultipleOf { get; set; }

    /// <summary>
    /// Padding-free batches (TRL's <c>padding_free</c>): the batch's sequences are packed one after another into rows
    /// (first-fit by decreasing length, each row as long as the longest sequence), position ids restarting at each
    /// sequence and a block-diagonal attention mask, so padding is only left at the rows' ends. Same log-probs as
    /// padded batches (fp32 rounding aside). Models built by <c>ModelLoader</c> only.
    /// </summary>
    /// <value>Default false.</value>
    [Description("pack each batch's sequences into rows without padding (position-id resets, block-diagonal mask)")]
    public bool PaddingFree { get; set; }

    /// <summary>
    /// Prefix sharing: each pair runs as one sequence <c>[prompt | chosen | rejected]</c> (position ids of the rejected
    /// branch continue from the prompt's end, an attention mask hides the chosen branch from it), so the prompt's
    /// forward and backward run once instead of twice — in training, the reference forward and precomputed reference
    /// log-probs. Same losses and gradients as one row per completion (fp32 rounding aside). TRL has no such option
    /// (it always concatenates); false restores TRL's layout. Models built by <c>ModelLoader</c> only (others always
    /// get one row per completion).
    /// </summary>
    /// <value>Default true.</value>
    [Description("run each pair's prompt once for both completions (false: one row per completion, as TRL)")]
    public bool PrefixSharing { get; set; } = true;

    /// <summary>How to read the training (or, with <paramref name="split"/>, another) split of <see cref="DataSourceOptions.Dataset"/>.</summary>
    public DatasetOptions ToDatasetOptions(string? split = null) => new()
    {
        PromptColumn = PromptColumn,
        ChosenColumn = ChosenColumn,
        RejectedColumn = RejectedColumn,
        SystemColumn = SystemColumn,
        Split = split ?? DatasetTrainSplit,
    };

    /// <summary>Length limits for tokenization.</summary>
    public TokenizationOptions ToTokenizationOptions() => new()
    {
        MaxLength = MaxLength,
        MaxPromptLength = MaxPromptLength,
        MaxCompletionLength = MaxCompletionLength,
        TruncationMode = TruncationMode,
    };

    /// <summary>A copy.</summary>
    public PreferenceDataOptions Clone() => (PreferenceDataOptions)MemberwiseClone();

    /// <summary>Throws <see cref="DpoSharpException"/> naming the first bad option.</summary>
    internal void Validate()
    {
        Require(MaxLength is null or >= 2, $"max_length must be at least 2 tokens, or null for no limit (got {MaxLength}).");
        Require(MaxPromptLength is null or >= 1, $"max_prompt_length must be at least 1, or null for no limit (got {MaxPromptLength}).");
        Require(MaxCompletionLength is null or >= 1, $"max_completion_length must be at least 1, or null for no limit (got {MaxCompletionLength}).");
        Require(
            MaxLength is null || MaxPromptLength is null || MaxPromptLength < MaxLength,
            $"max_prompt_length ({MaxPromptLength}) must be below max_length ({MaxLength}) to leave room for the completion.");
        Require(SystemColumn.Length > 0, "system_column must name a column.");
        OptionValues.RequireDefined(TruncationMode, "truncation_mode");
        Require(PadToMultipleOf is null or >= 1, $"pad_to_multiple_of must be at least 1 (got {PadToMultipleOf}).");
        ToDatasetOptions().Validate();
    }
}
