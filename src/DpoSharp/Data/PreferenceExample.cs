using DpoSharp.Tokenization;

namespace DpoSharp.Data;

/// <summary>How the text of a <see cref="PreferenceExample"/> is stored.</summary>
public enum PreferenceFormat
{
    /// <summary>Plain strings: <see cref="PreferenceExample.Prompt"/>, <see cref="PreferenceExample.Chosen"/>,
    /// <see cref="PreferenceExample.Rejected"/> (and an optional <see cref="PreferenceExample.System"/>).</summary>
    Standard,

    /// <summary>Chat messages, rendered with the model's chat template.</summary>
    Conversational,

    /// <summary>Token ids given by the dataset, used as they are.</summary>
    PreTokenized,
}

/// <summary>
/// One preference pair after normalization, independent of the file type and column spelling it came from.
/// Exactly one group of members is set, according to <see cref="Format"/>. Completions never repeat the prompt.
/// </summary>
public sealed class PreferenceExample
{
    /// <summary>Which members hold the pair.</summary>
    public required PreferenceFormat Format { get; init; }

    /// <summary>Standard format: an optional system text (the dataset's <c>system</c> column), else null.</summary>
    public string? System { get; init; }

    /// <summary>Standard format: the prompt text ("" when the dataset has no prompt at all).</summary>
    public string? Prompt { get; init; }

    /// <summary>Standard format: the preferred completion.</summary>
    public string? Chosen { get; init; }

    /// <summary>Standard format: the dispreferred completion.</summary>
    public string? Rejected { get; init; }

    /// <summary>Conversational format: the shared prompt turns (may start with a system message).</summary>
    public IReadOnlyList<ChatMessage>? PromptMessages { get; init; }

    /// <summary>Conversational format: the preferred completion turns (usually one assistant message).</summary>
    public IReadOnlyList<ChatMessage>? ChosenMessages { get; init; }

    /// <summary>Conversational format: the dispreferred completion turns.</summary>
    public IReadOnlyList<ChatMessage>? RejectedMessages { get; init; }

    /// <summary>Pre-tokenized format: prompt ids (may be empty).</summary>
    public IReadOnlyList<int>? PromptIds { get; init; }

    /// <summary>Pre-tokenized format: chosen completion ids.</summary>
    public IReadOnlyList<int>? ChosenIds { get; init; }

    /// <summary>Pre-tokenized format: rejected completion ids.</summary>
    public IReadOnlyList<int>? RejectedIds { get; init; }

    /// <summary>True when the prompt was not a column but the shared beginning of chosen and rejected.</summary>
    public bool PromptExtracted { get; init; }

    /// <summary>The file the row came from (for messages).</summary>
    public string SourceFile { get; init; } = "";

    /// <summary>The row's 0-based index in <see cref="SourceFile"/> (for messages).</summary>
    public int SourceRow { get; init; }

    /// <summary>True when the chosen and rejected completions are identical (such pairs teach nothing).</summary>
    public bool CompletionsIdentical => Format switch
    {
        PreferenceFormat.Standard => string.Equals(Chosen, Rejected, StringComparison.Ordinal),
        PreferenceFormat.Conversational => ChosenMessages!.SequenceEqual(RejectedMessages!),
        _ => ChosenIds!.SequenceEqual(RejectedIds!),
    };

    /// <summary>"file row N" for messages.</summary>
    public string Where => $"{SourceFile} row {SourceRow}";
}
