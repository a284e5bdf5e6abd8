namespace DpoSharp.Data;

/// <summary>Which end of an over-long prompt to keep.</summary>
public enum TruncationMode
{
    /// <summary>Keep the first tokens (cut the end).</summary>
    KeepStart,

    /// <summary>Keep the last tokens (cut the beginning), so the prompt still ends where the completion starts.</summary>
    KeepEnd,
}

/// <summary>Length limits for <see cref="PairTokenizer"/>, with TRL's <c>DPOConfig</c> defaults.</summary>
public sealed class TokenizationOptions
{
    /// <summary>Maximum tokens of prompt + completion per sequence; completions are cut to fit, and a pair whose
    /// prompt alone leaves no room for one completion token is dropped.</summary>
    /// <value>Default 1024; null for no limit.</value>
    public int? MaxLength { get; set; } = 1024;

    /// <summary>Maximum prompt tokens; longer prompts are cut according to <see cref="TruncationMode"/>.</summary>
    /// <value>Default 512; null for no limit.</value>
    public int? MaxPromptLength { get; set; } = 512;

    /// <summary>Maximum completion tokens (chosen and rejected each); longer completions keep their start.</summary>
    /// <value>Default null (no limit besides <see cref="MaxLength"/>).</value>
    public int? MaxCompletionLength { get; set; }

    /// <summary>Which end of an over-long prompt to keep.</summary>
    /// <value>Default <see cref="TruncationMode.KeepEnd"/>.</value>
    public TruncationMode TruncationMode { get; set; } = TruncationMode.KeepEnd;

    /// <summary>Text placed between a standard row's <c>system</c> text and its prompt.</summary>
    /// <value>Default <c>"\n\n"</c>.</value>
    public string SystemSeparator { get; set; } = "\n\n";

    /// <summary>Parses <c>keep_start</c> / <c>keep_end</c> (TRL spelling).</summary>
    public static TruncationMode ParseTruncationMode(string value) => value.Replace('-', '_').ToLowerInvariant() switch
    {
        "keep_start" => TruncationMode.KeepStart,
        "keep_end" => TruncationMode.KeepEnd,
        _ => throw new DpoSharpException($"Unknown truncation mode '{value}'; use keep_start or keep_end."),
    };

    /// <summary>Throws <see cref="DpoSharpException"/> when a limit is invalid.</summary>
    public void Validate()
    {
        if (MaxLength is < 2)
        {
            throw new DpoSharpException($"max_length must be at least 2 (one prompt and one completion token), got {MaxLength}.");
        }

        if (MaxPromptLength is < 1)
        {
            throw new DpoSharpException($"max_prompt_length must be at least 1, got {MaxPromptLength}.");
        }

        if (MaxCompletionLength is < 1)
        {
            throw new DpoSharpException($"max_completion_length must be at least 1, got {MaxCompletionLength}.");
        }

        if (MaxLength is int ml && MaxPromptLength is int mpl && mpl >= ml)
        {
            throw new DpoSharpException(
                $"max_prompt_length ({mpl}) must be smaller than max_length ({ml}) to leave room for the completion.");
        }
    }
}
