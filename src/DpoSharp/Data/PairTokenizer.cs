using DpoSharp.Tokenization;

namespace DpoSharp.Data;

/// <summary>
/// Tokenizes preference pairs with TRL's semantics, and counts everything it changes:
/// the prompt is tokenized alone (conversational data: rendered with the chat template and the generation prompt),
/// each completion after it (conversational: the rendering of prompt + completion minus the prompt's rendering);
/// EOS is appended to text completions (not to templated ones, whose template closes the turn); BOS is added once
/// when the tokenizer adds one and the text does not already start with it. The prompt ids are checked to be a
/// prefix of the tokenization of prompt + completion. Then the limits of <see cref="TokenizationOptions"/> apply;
/// a pair that cannot keep at least one token of each completion is dropped, never trained on empty.
/// Pre-tokenized pairs are used as given (only the limits apply); they need no tokenizer.
/// </summary>
public sealed class PairTokenizer
{
    /// <summary>Drop reason: the chosen completion has no tokens.</summary>
    public const string EmptyChosen = "empty chosen completion";

    /// <summary>Drop reason: the rejected completion has no tokens.</summary>
    public const string EmptyRejected = "empty rejected completion";

    /// <summary>Drop reason: the (possibly truncated) prompt fills max_length.</summary>
    public const string PromptTooLong = "prompt leaves no room for a completion within max_length";

    private readonly ITokenizer? tokenizer;
    private readonly TokenizationOptions options;

    /// <summary>Creates a pair tokenizer; <paramref name="options"/> are validated here. <paramref name="tokenizer"/>
    /// may be null when only pre-tokenized pairs are given (text pairs then throw <see cref="DpoSharpException"/>).</summary>
    public PairTokenizer(ITokenizer? tokenizer, TokenizationOptions? options = null)
    {
        this.tokenizer = tokenizer;
        this.options = options ?? new TokenizationOptions();
        this.options.Validate();
    }

    /// <summary>Tokenizes every pair of <paramref name="dataset"/>.</summary>
    public TokenizationResult Tokenize(PreferenceDataset dataset)
    {
        var result = Tokenize(dataset.Examples);
        result.Stats.IdenticalPairs = dataset.IdenticalCount;
        return result;
    }

    /// <summary>Tokenizes <paramref name="examples"/>; <see cref="TokenizedPair.SourceIndex"/> is the index in this list.</summary>
    public TokenizationResult Tokenize(IReadOnlyList<PreferenceExample> examples)
    {
        var stats = new TokenizationStats { Rows = examples.Count };
        var pairs = new List<TokenizedPair>(examples.Count);
        var dropped = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var dropReasons = new Dictionary<int, string>();
        var droppedRows = new List<string>();
        var rawP = new List<int>();
        var rawC = new List<int>();
        var rawR = new List<int>();
        for (var i = 0; i < examples.Count; i++)
        {
            var encoded = Encode(examples[i]);
            rawP.Add(encoded.PromptIds.Length);
            rawC.Add(encoded.ChosenIds.Length);
            rawR.Add(encoded.RejectedIds.Length);
            stats.NonPrefix += encoded.PromptIsPrefix ? 0 : 1;
            stats.TemplateMismatch += encoded.TemplatePrefixMismatch ? 1 : 0;
            var (pair, reason, truncation) = Truncate(encoded, i);
            if (pair is null)
            {
                dropped[reason!] = dropped.GetValueOrDefault(reason!) + 1;
                dropReasons[i] = reason!;
                if (droppedRows.Count < 5)
                {
                    droppedRows.Add(examples[i].Where);
                }

                continue;
            }

            stats.PromptTruncated += truncation.Prompt ? 1 : 0;
            stats.ChosenTruncated += truncation.Chosen ? 1 : 0;
            stats.RejectedTruncated += truncation.Rejected ? 1 : 0;
            pairs.Add(pair);
        }

        stats.Kept = pairs.Count;
        stats.Dropped = dropped;
        stats.RawPrompt = LengthSummary.From(rawP);
        stats.RawChosen = LengthSummary.From(rawC);
        stats.RawRejected = LengthSummary.From(rawR);
        stats.Prompt = LengthSummary.From(pairs.Select(p => p.PromptIds.Length));
        stats.Chosen = LengthSummary.From(pairs.Select(p => p.ChosenIds.Length));
        stats.Rejected = LengthSummary.From(pairs.Select(p => p.RejectedIds.Length));

        var warnings = new List<string>();
        if (stats.NonPrefix > 0)
        {
            warnings.Add(
                $"{stats.NonPrefix} of {examples.Count} pair(s): the prompt's tokens are not a prefix of the tokens of prompt + completion " +
                "(the tokenizer merges across the boundary); prompt and completion are tokenized separately, as in TRL.");
        }

        if (stats.TemplateMismatch > 0)
        {
            warnings.Add(
                $"{stats.TemplateMismatch} pair(s): the chat template's rendering of prompt + completion does not start with its rendering of the prompt " +
                "with the generation prompt; the completion starts where the two renderings differ.");
        }

        if (stats.DroppedCount > 0)
        {
            warnings.Add(
                $"{stats.DroppedCount} pair(s) dropped ({string.Join(", ", dropped.Select(d => $"{d.Key}: {d.Value}"))}), e.g. {string.Join("; ", droppedRows)}.");
        }

        return new TokenizationResult(pairs, stats, warnings) { DropReasons = dropReasons };
    }

    /// <summary>Tokenizes one pair before any length limit: the texts the model sees and their ids.</summary>
    public EncodedPair Encode(PreferenceExample example)
    {
        switch (example.Format)
        {
            case PreferenceFormat.PreTokenized:
                return new EncodedPair(example.PromptIds!.ToArray(), example.ChosenIds!.ToArray(), example.RejectedIds!.ToArray(),
                    null, null, null, true, false);
            case PreferenceFormat.Standard:
                {
                    var tok = Tok(example);
                    var prompt = example.System is null ? example.Prompt! : example.System + options.SystemSeparator + example.Prompt;
                    var p = WithBos(tok.Encode(prompt));
                    var c = WithEos(tok.Encode(example.Chosen!));
                    var r = WithEos(tok.Encode(example.Rejected!));
                    var prefix = IsPrefix(p, prompt + example.Chosen) && IsPrefix(p, prompt + example.Rejected);
                    return new EncodedPair(p, c, r, prompt, example.Chosen, example.Rejected, prefix, false);
                }

            default:
                {
                    var tok = Tok(example);
                    var promptMessages = example.PromptMessages!;
                    var prompt = tok.ApplyChatTemplate(promptMessages, addGenerationPrompt: true);
                    var (chosen, chosenOk) = CompletionText(prompt, promptMessages, example.ChosenMessages!);
                    var (rejected, rejectedOk) = CompletionText(prompt, promptMessages, example.RejectedMessages!);
                    var p = WithBos(tok.Encode(prompt));
                    var c = tok.Encode(chosen).ToArray();
                    var r = tok.Encode(rejected).ToArray();
                    var prefix = IsPrefix(p, prompt + chosen) && IsPrefix(p, prompt + rejected);
                    return new EncodedPair(p, c, r, prompt, chosen, rejected, prefix, !(chosenOk && rejectedOk));
                }
        }
    }

    private ITokenizer Tok(PreferenceExample example) => tokenizer ?? throw new DpoSharpException(
        $"{example.Where}: this pair is text, and tokenizing it needs a tokenizer; use a model directory with tokenizer files (tokenizer.json) or pre-tokenized data.");

    private ITokenizer Tok() => tokenizer ?? throw new InvalidOperationException("no tokenizer");

    private (string Text, bool TemplatePrefix) CompletionText(string promptText, IReadOnlyList<ChatMessage> prompt, IReadOnlyList<ChatMessage> completion)
    {
        var full = Tok().ApplyChatTemplate([.. prompt, .. completion], addGenerationPrompt: false);
        if (full.StartsWith(promptText, StringComparison.Ordinal))
        {
            return (full[promptText.Length..], true);
        }

        var common = full.AsSpan().CommonPrefixLength(promptText);
        return (full[common..], false);
    }

    private int[] WithBos(IReadOnlyList<int> ids)
    {
        if (Tok().AddsBosToken && Tok().BosTokenId is int bos && (ids.Count == 0 || ids[0] != bos))
        {
            return [bos, .. ids];
        }

        return ids.ToArray();
    }

    private int[] WithEos(IReadOnlyList<int> ids)
    {
        if (Tok().EosTokenId is int eos && (ids.Count == 0 || ids[^1] != eos))
        {
            return [.. ids, eos];
        }

        return ids.ToArray();
    }

    private bool IsPrefix(int[] promptIds, string fullText)
    {
        var full = WithBos(Tok().Encode(fullText));
        return full.Length >= promptIds.Length && full.AsSpan(0, promptIds.Length).SequenceEqual(promptIds);
    }

    private (TokenizedPair? Pair, string? Reason, (bool Prompt, bool Chosen, bool Rejected) Truncated) Truncate(EncodedPair e, int index)
    {
        var p = e.PromptIds;
        var c = e.ChosenIds;
        var r = e.RejectedIds;
        var promptCut = false;
        if (options.MaxPromptLength is int mpl && p.Length > mpl)
        {
            p = options.TruncationMode == TruncationMode.KeepStart ? p[..mpl] : p[^mpl..];
            promptCut = true;
        }

        if (c.Length == 0)
        {
            return (null, EmptyChosen, default);
        }

        if (r.Length == 0)
        {
            return (null, EmptyRejected, default);
        }

        var budget = int.MaxValue;
        if (options.MaxCompletionLength is int mcl)
        {
            budget = mcl;
        }

        if (options.MaxLength is int ml)
        {
            if (ml - p.Length < 1)
            {
                return (null, PromptTooLong, default);
            }

            budget = Math.Min(budget, ml - p.Length);
        }

        var chosenCut = c.Length > budget;
        var rejectedCut = r.Length > budget;
        if (chosenCut)
        {
            c = c[..budget];
        }

        if (rejectedCut)
        {
            r = r[..budget];
        }

        return (new TokenizedPair(p, c, r) { SourceIndex = index }, null, (promptCut, chosenCut, rejectedCut));
    }
}

/// <summary>One pair tokenized before length limits: ids and (for text data) the exact texts they come from.</summary>
/// <param name="PromptIds">Prompt ids (with BOS when the tokenizer adds one).</param>
/// <param name="ChosenIds">Chosen completion ids (EOS appended for text data).</param>
/// <param name="RejectedIds">Rejected completion ids.</param>
/// <param name="PromptText">The prompt text tokenized (after the chat template), or null for pre-tokenized data.</param>
/// <param name="ChosenText">The chosen completion text tokenized, or null.</param>
/// <param name="RejectedText">The rejected completion text tokenized, or null.</param>
/// <param name="PromptIsPrefix">Whether the prompt ids are a prefix of the ids of prompt + completion (both completions).</param>
/// <param name="TemplatePrefixMismatch">Whether the chat template rendered prompt + completion not starting with the prompt rendering.</param>
public sealed record EncodedPair(
    int[] PromptIds, int[] ChosenIds, int[] RejectedIds,
    string? PromptText, string? ChosenText, string? RejectedText,
    bool PromptIsPrefix, bool TemplatePrefixMismatch);

/// <summary>The tokenized pairs that survived, with statistics and warnings (each printed once).</summary>
/// <param name="Pairs">Kept pairs in dataset order.</param>
/// <param name="Stats">Counts and length distributions.</param>
/// <param name="Warnings">One sentence per kind of problem, with its count.</param>
public sealed record TokenizationResult(IReadOnlyList<TokenizedPair> Pairs, TokenizationStats Stats, IReadOnlyList<string> Warnings)
{
    /// <summary>Why each dropped pair was dropped, keyed by its index in the tokenized list (one of
    /// <see cref="PairTokenizer.EmptyChosen"/>, <see cref="PairTokenizer.EmptyRejected"/>, <see cref="PairTokenizer.PromptTooLong"/>).</summary>
    public IReadOnlyDictionary<int, string> DropReasons { get; init; } = new Dictionary<int, string>();
}

/// <summary>What <see cref="PairTokenizer"/> did to a dataset.</summary>
public sealed class TokenizationStats
{
    /// <summary>Pairs in.</summary>
    public int Rows { get; set; }

    /// <summary>Pairs out.</summary>
    public int Kept { get; set; }

    /// <summary>Dropped pairs by reason.</summary>
    public IReadOnlyDictionary<string, int> Dropped { get; set; } = new Dictionary<string, int>();

    /// <summary>Total dropped pairs.</summary>
    public int DroppedCount => Dropped.Values.Sum();

    /// <summary>Kept pairs whose prompt was truncated (max_prompt_length).</summary>
    public int PromptTruncated { get; set; }

    /// <summary>Kept pairs whose chosen completion was truncated (max_completion_length / max_length).</summary>
    public int ChosenTruncated { get; set; }

    /// <summary>Kept pairs whose rejected completion was truncated.</summary>
    public int RejectedTruncated { get; set; }

    /// <summary>Pairs whose prompt ids are not a prefix of the ids of prompt + completion.</summary>
    public int NonPrefix { get; set; }

    /// <summary>Conversational pairs whose template rendering of prompt + completion does not extend the prompt rendering.</summary>
    public int TemplateMismatch { get; set; }

    /// <summary>Pairs with identical chosen and rejected completions (from the dataset).</summary>
    public int IdenticalPairs { get; set; }

    /// <summary>Prompt token lengths of kept pairs, after truncation.</summary>
    public LengthSummary Prompt { get; set; } = LengthSummary.Empty;

    /// <summary>Chosen token lengths of kept pairs, after truncation.</summary>
    public LengthSummary Chosen { get; set; } = LengthSummary.Empty;

    /// <summary>Rejected token lengths of kept pairs, after truncation.</summary>
    public LengthSummary Rejected { get; set; } = LengthSummary.Empty;

    /// <summary>Prompt token lengths of all pairs before truncation.</summary>
    public LengthSummary RawPrompt { get; set; } = LengthSummary.Empty;

    /// <summary>Chosen token lengths of all pairs before truncation.</summary>
    public LengthSummary RawChosen { get; set; } = LengthSummary.Empty;

    /// <summary>Rejected token lengths of all pairs before truncation.</summary>
    public LengthSummary RawRejected { get; set; } = LengthSummary.Empty;
}
