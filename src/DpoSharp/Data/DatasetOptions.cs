namespace DpoSharp.Data;

/// <summary>How <see cref="PreferenceDatasetLoader"/> reads a dataset: column names and the split.</summary>
public sealed class DatasetOptions
{
    /// <summary>Column holding the prompt (a string or a message list).</summary>
    /// <value>Default null: <c>prompt</c> when present, else the <c>conversations</c> column (ShareGPT), else the
    /// prompt is the shared beginning of chosen and rejected (implicit prompt). When set, the column must exist.</value>
    public string? PromptColumn { get; set; }

    /// <summary>Column holding the preferred completion.</summary>
    /// <value>Default <c>chosen</c>.</value>
    public string ChosenColumn { get; set; } = "chosen";

    /// <summary>Column holding the dispreferred completion.</summary>
    /// <value>Default <c>rejected</c>.</value>
    public string RejectedColumn { get; set; } = "rejected";

    /// <summary>Optional column with a system text (used when present).</summary>
    /// <value>Default <c>system</c>.</value>
    public string SystemColumn { get; set; } = "system";

    /// <summary>Split to read from a dataset folder (<c>train</c>, <c>test</c>, ...), from the file names.</summary>
    /// <value>Default null: <c>train</c> when present, else the only split.</value>
    public string? Split { get; set; }

    /// <summary>Throws <see cref="DpoSharpException"/> when an option is invalid.</summary>
    public void Validate()
    {
        if (PromptColumn is not null && string.IsNullOrWhiteSpace(PromptColumn))
        {
            throw new DpoSharpException("The prompt column name is empty; pass a column name or leave it unset.");
        }

        if (string.IsNullOrWhiteSpace(ChosenColumn) || string.IsNullOrWhiteSpace(RejectedColumn))
        {
            throw new DpoSharpException("The chosen and rejected column names must not be empty.");
        }

        if (ChosenColumn == RejectedColumn)
        {
            throw new DpoSharpException($"The chosen and rejected columns are both '{ChosenColumn}'; they must differ.");
        }

        if (PromptColumn is not null && (PromptColumn == ChosenColumn || PromptColumn == RejectedColumn))
        {
            throw new DpoSharpException($"The prompt column '{PromptColumn}' is also the chosen or rejected column.");
        }

        if (Split is not null && string.IsNullOrWhiteSpace(Split))
        {
            throw new DpoSharpException("The split name is empty.");
        }
    }
}
