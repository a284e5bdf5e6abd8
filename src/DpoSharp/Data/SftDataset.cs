using System.Text.Json;
using System.Text.Json.Nodes;
using DpoSharp.Data.Readers;
using DpoSharp.Tokenization;

namespace DpoSharp.Data;

/// <summary>One supervised fine-tuning row in TRL's prompt-completion format, or a language-modeling text.</summary>
/// <param name="Prompt">The prompt (not trained on, unless <c>completion_only_loss</c> is off).</param>
/// <param name="Completion">The completion (the tokens the loss covers, plus EOS); for a text row, the whole text.</param>
public sealed record PromptCompletion(string Prompt, string Completion)
{
    /// <summary>A language-modeling row (TRL's <c>dataset_text_field</c>): <see cref="Completion"/> holds the whole
    /// text, <see cref="Prompt"/> is empty, and the loss covers every token.</summary>
    public bool IsText { get; init; }

    /// <summary>A language-modeling row of <paramref name="text"/>.</summary>
    public static PromptCompletion Text(string text) => new(string.Empty, text) { IsText = true };
}

/// <summary>One SFT example after tokenization: prompt ids (with BOS when the tokenizer adds one) and completion ids
/// (with EOS). The loss covers the completion ids only.</summary>
/// <param name="PromptIds">Prompt token ids.</param>
/// <param name="CompletionIds">Completion token ids, ending with EOS.</param>
public sealed record TokenizedCompletion(int[] PromptIds, int[] CompletionIds);

/// <summary>
/// Reads and tokenizes supervised fine-tuning data for <see cref="Training.SftTrainer"/>: the files
/// <see cref="PreferenceDatasetLoader"/> reads (JSONL, JSON, Parquet, CSV/TSV, or a Hugging Face dataset folder with
/// splits), with TRL's SFT row shapes: <c>prompt</c> + <c>completion</c> strings, or a text column
/// (<c>dataset_text_field</c>, default <c>text</c>).
/// </summary>
public static class SftDataset
{
    /// <summary>The column of language-modeling rows unless <c>dataset_text_field</c> says otherwise (TRL).</summary>
    public const string DefaultTextField = "text";

    /// <summary>
    /// Reads <paramref name="path"/>: a file, or a dataset folder (the <paramref name="split"/> split; null:
    /// <c>train</c>, else the only split). Every row must have string <c>prompt</c> and <c>completion</c> columns, or
    /// every row a string <paramref name="textField"/> column.
    /// </summary>
    /// <exception cref="DpoSharpException">Missing path or split, malformed file, or a bad row: the message names the
    /// file and the row as <c>dposharp train</c> does (<c>row N (line L)</c>, rows counted from 0).</exception>
    public static IReadOnlyList<PromptCompletion> Load(string path, string? split = null, string textField = DefaultTextField)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentException.ThrowIfNullOrWhiteSpace(textField);
        var (files, _, _, _) = PreferenceDatasetLoader.ResolveFiles(path, split);
        var rows = new List<PromptCompletion>();
        string? firstWhere = null;
        bool? firstIsText = null;
        foreach (var file in files)
        {
            foreach (var raw in PreferenceDatasetLoader.ReadRows(file, new DatasetOptions { Split = split }, out _))
            {
                var where = $"{file} {raw.Describe()}";
                var row = Row(raw.Values, textField, where);
                if (firstIsText is null)
                {
                    (firstIsText, firstWhere) = (row.IsText, where);
                }
                else if (firstIsText != row.IsText)
                {
                    throw new DpoSharpException(
                        $"{where}: this row is {Shape(row.IsText, textField)} but {firstWhere} is {Shape(firstIsText.Value, textField)}; " +
                        "every row of a dataset must have the same shape.");
                }

                rows.Add(row);
            }
        }

        return rows;
    }

    /// <summary>
    /// Tokenizes <paramref name="rows"/>: prompt with the tokenizer's BOS (when it adds one), completion + EOS. With
    /// <paramref name="maxLength"/>, the prompt keeps its last tokens so that at least one completion token fits, and
    /// the completion is cut at the limit. Without <paramref name="completionOnlyLoss"/>, and for text rows, the loss
    /// covers every token after the first (the first has nothing before it to be predicted from).
    /// </summary>
    public static IReadOnlyList<TokenizedCompletion> Tokenize(IReadOnlyList<PromptCompletion> rows, ITokenizer tokenizer, int? maxLength = null, bool completionOnlyLoss = true)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var result = new List<TokenizedCompletion>(rows.Count);
        foreach (var row in rows)
        {
            var p = tokenizer.Encode(row.Prompt).ToList();
            if (tokenizer.AddsBosToken && tokenizer.BosTokenId is int bos && (p.Count == 0 || p[0] != bos))
            {
                p.Insert(0, bos);
            }

            var c = tokenizer.Encode(row.Completion).ToList();
            if (tokenizer.EosTokenId is int eos)
            {
                c.Add(eos);
            }

            if (c.Count == 0)
            {
                continue;
            }

            if (maxLength is int max && p.Count + c.Count > max)
            {
                int keepPrompt = Math.Min(p.Count, Math.Max(1, max - c.Count));
                p = p.GetRange(p.Count - keepPrompt, keepPrompt);
                int keepCompletion = Math.Max(1, max - p.Count);
                c = c.GetRange(0, Math.Min(c.Count, keepCompletion));
            }

            if (row.IsText || !completionOnlyLoss)
            {
                var all = p.Concat(c).ToList();
                if (all.Count < 2)
                {
                    continue;
                }

                (p, c) = (all.GetRange(0, 1), all.GetRange(1, all.Count - 1));
            }

            result.Add(new TokenizedCompletion([.. p], [.. c]));
        }

        return result;
    }

    private static PromptCompletion Row(JsonObject v, string textField, string where)
    {
        bool promptCompletion = v.ContainsKey("prompt") || v.ContainsKey("completion");
        if (!promptCompletion && v.ContainsKey(textField))
        {
            return PromptCompletion.Text(AsString(v, textField, where));
        }

        foreach (var column in new[] { "prompt", "completion" })
        {
            if (!v.ContainsKey(column))
            {
                throw new DpoSharpException(
                    $"{where}: missing column '{column}'. Columns present: {string.Join(", ", v.Select(p => p.Key))}. " +
                    $"SFT rows need string 'prompt' and 'completion' columns, or a text column '{textField}' (dataset_text_field).");
            }
        }

        return new PromptCompletion(AsString(v, "prompt", where), AsString(v, "completion", where));
    }

    private static string AsString(JsonObject v, string column, string where)
    {
        var node = v[column];
        if (node is null)
        {
            throw new DpoSharpException($"{where}: column '{column}' is null; give it a value or remove the row.");
        }

        if (node is not JsonValue value || value.GetValueKind() != JsonValueKind.String)
        {
            var what = node is JsonArray ? " (conversational message lists are not supported by sft yet; give text)" : string.Empty;
            throw new DpoSharpException($"{where}: column '{column}' must be a string, found {JsonRowReader.Kind(node)}{what}.");
        }

        return value.GetValue<string>();
    }

    private static string Shape(bool text, string textField) => text ? $"language-modeling text ('{textField}')" : "prompt-completion";
}
