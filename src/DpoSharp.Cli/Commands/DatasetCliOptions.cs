using System.CommandLine;
using DpoSharp.Data;

namespace DpoSharp.Cli.Commands;

/// <summary>
/// The dataset and tokenization flags shared by commands that read preference data (<c>dposharp data</c>,
/// <c>dposharp score</c>): <c>--dataset</c>, <c>--split</c>, the column mapping, and the length limits. One definition,
/// so the commands spell, describe and interpret them identically.
/// </summary>
internal sealed class DatasetCliOptions
{
    /// <summary>Creates the options; <paramref name="datasetDescription"/> describes <c>--dataset</c> for the command.</summary>
    /// <param name="datasetDescription">Help text of <c>--dataset</c>.</param>
    /// <param name="limitNote">Appended to the help of the three length limits (e.g. how pre-tokenized data is treated).</param>
    public DatasetCliOptions(string datasetDescription, string limitNote = "")
    {
        Dataset = new Option<string>("--dataset") { Description = datasetDescription, Required = true };
        Split = new Option<string?>("--split") { Description = "Split of a dataset folder (default: train, or the only split)." };
        PromptColumn = new Option<string?>("--prompt-column") { Description = "Column holding the prompt (default: prompt, else conversations, else extracted from chosen/rejected)." };
        ChosenColumn = new Option<string>("--chosen-column") { Description = "Column holding the preferred completion.", DefaultValueFactory = _ => "chosen" };
        RejectedColumn = new Option<string>("--rejected-column") { Description = "Column holding the dispreferred completion.", DefaultValueFactory = _ => "rejected" };
        MaxLength = new Option<int?>("--max-length") { Description = "Maximum tokens of prompt + completion (default 1024; 0 = no limit)." + limitNote };
        MaxPromptLength = new Option<int?>("--max-prompt-length") { Description = "Maximum prompt tokens (default 512; 0 = no limit)." + limitNote };
        MaxCompletionLength = new Option<int?>("--max-completion-length") { Description = "Maximum completion tokens (default: no limit)." + limitNote };
        TruncationMode = new Option<string>("--truncation-mode") { Description = "Which end of a long prompt to keep: keep_start or keep_end.", DefaultValueFactory = _ => "keep_end" };
        TruncationMode.AcceptOnlyFromAmong("keep_start", "keep_end");
    }

    /// <summary><c>--dataset</c>: file or dataset folder.</summary>
    public Option<string> Dataset { get; }

    /// <summary><c>--split</c>.</summary>
    public Option<string?> Split { get; }

    /// <summary><c>--prompt-column</c>.</summary>
    public Option<string?> PromptColumn { get; }

    /// <summary><c>--chosen-column</c>.</summary>
    public Option<string> ChosenColumn { get; }

    /// <summary><c>--rejected-column</c>.</summary>
    public Option<string> RejectedColumn { get; }

    /// <summary><c>--max-length</c> (0 = no limit).</summary>
    public Option<int?> MaxLength { get; }

    /// <summary><c>--max-prompt-length</c> (0 = no limit).</summary>
    public Option<int?> MaxPromptLength { get; }

    /// <summary><c>--max-completion-length</c> (0 = no limit).</summary>
    public Option<int?> MaxCompletionLength { get; }

    /// <summary><c>--truncation-mode</c>: keep_start or keep_end.</summary>
    public Option<string> TruncationMode { get; }

    /// <summary>The dataset flags (dataset, split, columns), in help order.</summary>
    public IEnumerable<Option> DatasetFlags => [Dataset, Split, PromptColumn, ChosenColumn, RejectedColumn];

    /// <summary>The tokenization flags (limits, truncation mode), in help order.</summary>
    public IEnumerable<Option> TokenizationFlags => [MaxLength, MaxPromptLength, MaxCompletionLength, TruncationMode];

    /// <summary>Column names and split from the parsed flags.</summary>
    public DatasetOptions GetDatasetOptions(ParseResult parse) => new()
    {
        Split = parse.GetValue(Split),
        PromptColumn = parse.GetValue(PromptColumn),
        ChosenColumn = parse.GetValue(ChosenColumn)!,
        RejectedColumn = parse.GetValue(RejectedColumn)!,
    };

    /// <summary>
    /// Length limits from the parsed flags: a flag not given keeps <paramref name="defaults"/>' value, 0 means no limit.
    /// </summary>
    public TokenizationOptions GetTokenizationOptions(ParseResult parse, TokenizationOptions defaults)
    {
        static int? Limit(int? given, int? fallback) => given switch
        {
            null => fallback,
            0 => null,
            _ => given,
        };

        return new TokenizationOptions
        {
            MaxLength = Limit(parse.GetValue(MaxLength), defaults.MaxLength),
            MaxPromptLength = Limit(parse.GetValue(MaxPromptLength), defaults.MaxPromptLength),
            MaxCompletionLength = Limit(parse.GetValue(MaxCompletionLength), defaults.MaxCompletionLength),
            TruncationMode = TokenizationOptions.ParseTruncationMode(parse.GetValue(TruncationMode)!),
            SystemSeparator = defaults.SystemSeparator,
        };
    }

}
