namespace DpoSharp.Data;

/// <summary>
/// One preference pair after tokenization and truncation: the prompt ids and each completion's ids
/// (completion ids do not repeat the prompt). The collator builds prompt+completion rows from it.
/// </summary>
public sealed record TokenizedPair(int[] PromptIds, int[] ChosenIds, int[] RejectedIds)
{
    /// <summary>Index of the source row in the dataset file (0-based), for error messages and caching.</summary>
    public int SourceIndex { get; init; }

    /// <summary>Tokens of the pair's longer row (prompt + the longer completion): the length its batch pads to at least.</summary>
    public int LongestRow => PromptIds.Length + Math.Max(ChosenIds.Length, RejectedIds.Length);
}
