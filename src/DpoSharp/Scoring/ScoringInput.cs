using DpoSharp.Data;
using DpoSharp.Tokenization;

namespace DpoSharp.Scoring;

/// <summary>One input row of <c>dposharp score</c>: the pair to score, or why the row is not scored.</summary>
/// <param name="Index">0-based position of the row in the dataset (over all files of a folder, in order).</param>
/// <param name="Where">"file row N" for messages.</param>
/// <param name="Pair">The tokenized (and possibly truncated) pair, or null when dropped.</param>
/// <param name="DropReason">Why the row is not scored (see <see cref="PairTokenizer"/>'s reasons and
/// <see cref="ScoringInput.EmptyPrompt"/>), or null when scored.</param>
public sealed record ScoringRow(int Index, string Where, TokenizedPair? Pair, string? DropReason);

/// <summary>Every input row in order, with what tokenization did.</summary>
/// <param name="Rows">One entry per input row, in input order.</param>
/// <param name="Tokenization">The tokenizer's result (kept pairs, statistics, warnings).</param>
public sealed record ScoringRows(IReadOnlyList<ScoringRow> Rows, TokenizationResult Tokenization)
{
    /// <summary>The rows that are scored, in input order.</summary>
    public IReadOnlyList<ScoringRow> Kept => [.. Rows.Where(r => r.Pair is not null)];
}

/// <summary>
/// Turns a loaded preference dataset into the pairs <c>dposharp score</c> scores: text shapes (standard, implicit
/// prompt, conversational) are tokenized with the model's tokenizer by <see cref="PairTokenizer"/> (TRL semantics, as
/// in training); pre-tokenized rows are used as given (only the limits passed apply). Rows that cannot be scored
/// (truncation leaves no completion token, or text whose prompt has no token) are kept with a reason so that output
/// row N stays input row N.
/// </summary>
public static class ScoringInput
{
    /// <summary>Drop reason: a text row whose prompt tokenizes to nothing (and the tokenizer adds no BOS), so the
    /// first completion token has nothing to be predicted from.</summary>
    public const string EmptyPrompt = "empty prompt: no token to predict the first completion token from (the tokenizer adds no BOS)";

    /// <summary>
    /// Tokenizes (text) or takes (pre-tokenized) every example and checks the ids against the model's vocabulary.
    /// </summary>
    /// <param name="examples">The dataset's rows, in order.</param>
    /// <param name="tokenizer">The model's tokenizer; may be null only when every row is pre-tokenized.</param>
    /// <param name="options">Length limits (validated here).</param>
    /// <param name="vocabSize">The model's vocabulary size; ids must be below it.</param>
    /// <exception cref="DpoSharpException">Text rows without a tokenizer; a pre-tokenized row with an empty prompt; an
    /// id outside the vocabulary. The message names the file and row.</exception>
    public static ScoringRows Prepare(IReadOnlyList<PreferenceExample> examples, ITokenizer? tokenizer, TokenizationOptions options, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentNullException.ThrowIfNull(options);
        if (tokenizer is null && examples.FirstOrDefault(e => e.Format != PreferenceFormat.PreTokenized) is { } text)
        {
            throw new DpoSharpException(
                $"{text.Where}: the dataset holds text ({(text.Format == PreferenceFormat.Conversational ? "chat messages" : "strings")}), " +
                "and the model directory has no tokenizer (tokenizer.json, tokenizer.model, vocab.json + merges.txt) to tokenize it; " +
                "copy the model's tokenizer files into the model directory, or score pre-tokenized data (prompt_input_ids, chosen_input_ids, rejected_input_ids).");
        }

        if (tokenizer is { ChatTemplate: null } && examples.FirstOrDefault(e => e.Format == PreferenceFormat.Conversational) is { } chat)
        {
            throw new DpoSharpException(
                $"{chat.Where}: the dataset holds chat messages, and the model's tokenizer has no chat_template (tokenizer_config.json) to render them; " +
                "use a model directory whose tokenizer_config.json has a chat_template, or convert the data to prompt/chosen/rejected strings.");
        }

        var result = new PairTokenizer(tokenizer, options).Tokenize(examples);
        var kept = result.Pairs.ToDictionary(p => p.SourceIndex);
        var rows = new ScoringRow[examples.Count];
        for (var i = 0; i < examples.Count; i++)
        {
            var e = examples[i];
            if (!kept.TryGetValue(i, out var pair))
            {
                rows[i] = new ScoringRow(i, e.Where, null, result.DropReasons.GetValueOrDefault(i, "dropped by tokenization"));
                continue;
            }

            if (pair.PromptIds.Length == 0)
            {
                if (e.Format == PreferenceFormat.PreTokenized)
                {
                    throw new DpoSharpException(
                        $"{e.Where}: the prompt ids are empty; the first completion token is predicted from the last prompt token, so the prompt needs at least one token (e.g. BOS).");
                }

                rows[i] = new ScoringRow(i, e.Where, null, EmptyPrompt);
                continue;
            }

            foreach (var (name, ids) in new[] { ("prompt", pair.PromptIds), ("chosen", pair.ChosenIds), ("rejected", pair.RejectedIds) })
            {
                foreach (var id in ids)
                {
                    if (id < 0 || id >= vocabSize)
                    {
                        throw new DpoSharpException(
                            $"{e.Where}: {name} token id {id} is outside the model's vocabulary (0..{vocabSize - 1}); " +
                            (e.Format == PreferenceFormat.PreTokenized ? "was the dataset tokenized for another model?" : "the tokenizer does not belong to this model."));
                    }
                }
            }

            rows[i] = new ScoringRow(i, e.Where, pair with { SourceIndex = i }, null);
        }

        return new ScoringRows(rows, result);
    }

    /// <summary>Pre-tokenized pairs (e.g. from <see cref="PretokenizedPairs.Read"/>) as examples from <paramref name="file"/>;
    /// each example's row is the pair's <see cref="TokenizedPair.SourceIndex"/>.</summary>
    public static IReadOnlyList<PreferenceExample> FromPairs(IReadOnlyList<TokenizedPair> pairs, string file) =>
    [
        .. pairs.Select(p => new PreferenceExample
        {
            Format = PreferenceFormat.PreTokenized,
            PromptIds = p.PromptIds,
            ChosenIds = p.ChosenIds,
            RejectedIds = p.RejectedIds,
            SourceFile = file,
            SourceRow = p.SourceIndex,
        }),
    ];
}
