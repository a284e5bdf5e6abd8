using System.Text.Json;
using DpoSharp.Tokenization;

namespace DpoSharp.Data;

/// <summary>One supervised fine-tuning row in TRL's prompt-completion format.</summary>
/// <param name="Prompt">The prompt (not trained on).</param>
/// <param name="Completion">The completion (the tokens the loss covers, plus EOS).</param>
public sealed record PromptCompletion(string Prompt, string Completion);

/// <summary>One SFT example after tokenization: prompt ids (with BOS when the tokenizer adds one) and completion ids
/// (with EOS). The loss covers the completion ids only.</summary>
/// <param name="PromptIds">Prompt token ids.</param>
/// <param name="CompletionIds">Completion token ids, ending with EOS.</param>
public sealed record TokenizedCompletion(int[] PromptIds, int[] CompletionIds);

/// <summary>Reads and tokenizes prompt-completion data for <see cref="Training.SftTrainer"/>.</summary>
public static class SftDataset
{
    /// <summary>
    /// Reads a JSONL file (or a JSON array file) of objects with string fields <c>prompt</c> and <c>completion</c>.
    /// </summary>
    /// <exception cref="DpoSharpException">Missing file, malformed JSON, or a row without those fields (the message names
    /// the file, the row and the field).</exception>
    public static IReadOnlyList<PromptCompletion> Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new DpoSharpException($"{path}: dataset file not found.");
        }

        var rows = new List<PromptCompletion>();
        var text = File.ReadAllText(path);
        if (text.TrimStart().StartsWith('['))
        {
            using var doc = Parse(text, path, 0);
            int i = 0;
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                rows.Add(Row(e, path, ++i));
            }
        }
        else
        {
            int line = 0;
            foreach (var raw in text.Split('\n'))
            {
                line++;
                if (raw.Trim().Length == 0)
                {
                    continue;
                }

                using var doc = Parse(raw, path, line);
                rows.Add(Row(doc.RootElement, path, line));
            }
        }

        if (rows.Count == 0)
        {
            throw new DpoSharpException($"{path}: no rows; give one JSON object per line with \"prompt\" and \"completion\".");
        }

        return rows;
    }

    /// <summary>
    /// Tokenizes <paramref name="rows"/>: prompt with the tokenizer's BOS (when it adds one), completion + EOS. With
    /// <paramref name="maxLength"/>, the prompt keeps its last tokens so that at least one completion token fits, and
    /// the completion is cut at the limit.
    /// </summary>
    public static IReadOnlyList<TokenizedCompletion> Tokenize(IReadOnlyList<PromptCompletion> rows, ITokenizer tokenizer, int? maxLength = null)
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

            result.Add(new TokenizedCompletion([.. p], [.. c]));
        }

        return result;
    }

    private static JsonDocument Parse(string json, string path, int line)
    {
        try
        {
            return JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new DpoSharpException($"{path}{(line > 0 ? $": line {line}" : "")}: malformed JSON ({e.Message}).", e);
        }
    }

    private static PromptCompletion Row(JsonElement e, string path, int row)
    {
        string Field(string name) => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()!
            : throw new DpoSharpException($"{path}: row {row}: field \"{name}\" is missing or not a string; SFT data needs \"prompt\" and \"completion\" strings.");
        return new PromptCompletion(Field("prompt"), Field("completion"));
    }
}
