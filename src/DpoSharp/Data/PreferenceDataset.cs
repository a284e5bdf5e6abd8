namespace DpoSharp.Data;

/// <summary>A loaded, validated and normalized preference dataset.</summary>
public sealed class PreferenceDataset
{
    /// <summary>The pairs, in file order.</summary>
    public required IReadOnlyList<PreferenceExample> Examples { get; init; }

    /// <summary>The format every pair has.</summary>
    public required PreferenceFormat Format { get; init; }

    /// <summary>The data files read, in order.</summary>
    public required IReadOnlyList<string> Files { get; init; }

    /// <summary>The split read (for dataset folders), or null for a single file.</summary>
    public string? Split { get; init; }

    /// <summary>All splits found in a dataset folder (empty for a single file).</summary>
    public IReadOnlyList<string> AvailableSplits { get; init; } = [];

    /// <summary>The columns of the first row.</summary>
    public IReadOnlyList<string> Columns { get; init; } = [];

    /// <summary>Pairs whose prompt was extracted from chosen/rejected (implicit prompt).</summary>
    public int PromptExtractedCount => Examples.Count(e => e.PromptExtracted);

    /// <summary>Pairs whose chosen and rejected completions are identical (kept, but they teach nothing).</summary>
    public int IdenticalCount { get; init; }

    /// <summary>Non-fatal findings (identical pairs, ...), one sentence each.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}
