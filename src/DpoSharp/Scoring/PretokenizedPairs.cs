using DpoSharp.IO;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DpoSharp.Data;

namespace DpoSharp.Scoring;

/// <summary>
/// Pre-tokenized preference JSONL: one object per line with integer arrays <c>prompt_input_ids</c>,
/// <c>chosen_input_ids</c>, <c>rejected_input_ids</c> (completions do not repeat the prompt). Blank lines are skipped.
/// </summary>
public static class PretokenizedPairs
{
    /// <summary>The three fields, in order.</summary>
    public static IReadOnlyList<string> Fields { get; } = ["prompt_input_ids", "chosen_input_ids", "rejected_input_ids"];

    /// <summary>Reads <paramref name="path"/>; <see cref="TokenizedPair.SourceIndex"/> is the 0-based line index.</summary>
    /// <exception cref="DpoSharpException">Missing file, bad JSON, missing/non-integer fields, ids outside
    /// 0..<paramref name="vocabSize"/>-1; the message names the file, line and field.</exception>
    public static IReadOnlyList<TokenizedPair> Read(string path, int? vocabSize = null)
    {
        if (!File.Exists(path))
        {
            throw new DpoSharpException($"{path}: dataset file not found.");
        }

        var pairs = new List<TokenizedPair>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            string where = $"{path}:{lineNo}";
            JsonObject obj;
            try
            {
                obj = JsonNode.Parse(line) as JsonObject ?? throw new DpoSharpException($"{where}: each line must be a JSON object.");
            }
            catch (JsonException e)
            {
                throw new DpoSharpException($"{where}: not valid JSON ({e.Message}).", e);
            }

            var arrays = new int[3][];
            for (int f = 0; f < 3; f++)
            {
                arrays[f] = ReadIds(obj, Fields[f], where, vocabSize);
            }

            if (arrays[0].Length == 0)
            {
                throw new DpoSharpException($"{where}: field 'prompt_input_ids' is empty; the first completion token is predicted from the last prompt token, so the prompt needs at least one token (e.g. BOS).");
            }

            for (int f = 1; f < 3; f++)
            {
                if (arrays[f].Length == 0)
                {
                    throw new DpoSharpException($"{where}: field '{Fields[f]}' is empty; a completion needs at least one token.");
                }
            }

            pairs.Add(new TokenizedPair(arrays[0], arrays[1], arrays[2]) { SourceIndex = lineNo - 1 });
        }

        return pairs;
    }

    private static int[] ReadIds(JsonObject obj, string field, string where, int? vocab)
    {
        if (obj[field] is not JsonArray arr)
        {
            throw new DpoSharpException(obj.ContainsKey(field)
                ? $"{where}: field '{field}' must be an array of token ids."
                : $"{where}: missing field '{field}' (each row needs {string.Join(", ", Fields)}).");
        }

        var ids = new int[arr.Count];
        for (int i = 0; i < arr.Count; i++)
        {
            if (arr[i] is not JsonValue v || !v.TryGetValue<int>(out var id) || id < 0)
            {
                throw new DpoSharpException($"{where}: field '{field}' item {i} ({arr[i]?.ToJsonString() ?? "null"}) is not a non-negative integer token id.");
            }

            if (vocab is int n && id >= n)
            {
                throw new DpoSharpException($"{where}: field '{field}' item {i}: token id {id} is outside the model's vocabulary (0..{n - 1}); was the dataset tokenized for another model?");
            }

            ids[i] = id;
        }

        return ids;
    }

    /// <summary>
    /// True when <paramref name="path"/> is a <c>.jsonl</c> file whose first non-blank line is a JSON object with
    /// pre-tokenized fields and without the text columns of <paramref name="options"/> — the file
    /// <see cref="Read"/> reads (with its exact checks). Anything else (other files, text rows, unparsable first
    /// line) is left to <see cref="PreferenceDatasetLoader"/>.
    /// </summary>
    public static bool IsPretokenizedJsonl(string path, DatasetOptions? options = null)
    {
        options ??= new DatasetOptions();
        if (!File.Exists(path) || !string.Equals(Path.GetExtension(path), ".jsonl", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var first = File.ReadLines(path).FirstOrDefault(l => !string.IsNullOrWhiteSpace(l));
        if (first is null)
        {
            return false;
        }

        try
        {
            return JsonNode.Parse(first) is JsonObject o && Fields.Any(o.ContainsKey) &&
                !o.ContainsKey(options.ChosenColumn) && !o.ContainsKey(options.RejectedColumn);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>
    /// Writes one JSON object per score (<c>index</c>, <c>chosen_logps</c>, <c>rejected_logps</c>; with
    /// <paramref name="losses"/> also <c>ref_chosen_logps</c>, <c>ref_rejected_logps</c>, <c>chosen_reward</c>,
    /// <c>rejected_reward</c>, <c>loss</c>) to <paramref name="path"/>, see <see cref="WriteRows"/>.
    /// </summary>
    public static void WriteScores(string path, IReadOnlyList<PairScore> scores, IReadOnlyList<PairLossScore>? losses = null)
    {
        if (losses is not null && losses.Count != scores.Count)
        {
            throw new ArgumentException($"{losses.Count} loss rows for {scores.Count} scores", nameof(losses));
        }

        WriteRows(path, [.. scores.Select((s, i) => new ScoredRow(i, s, losses?[i], null))], losses is not null);
    }

    /// <summary>
    /// Writes one JSON object per row, in the given order: <c>index</c>, <c>chosen_logps</c>, <c>rejected_logps</c>,
    /// with <paramref name="withLosses"/> also <c>ref_chosen_logps</c>, <c>ref_rejected_logps</c>,
    /// <c>chosen_reward</c>, <c>rejected_reward</c>, <c>loss</c>; a dropped row has <c>dropped</c> (the reason) and
    /// null scores. Written through a temporary file renamed at the end, so a failure leaves no partial output.
    /// </summary>
    public static void WriteRows(string path, IReadOnlyList<ScoredRow> rows, bool withLosses)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir))
        {
            throw new DpoSharpException($"{path}: the output directory {dir} does not exist.");
        }

        AtomicFile.Write(full, stream =>
        {
            using (var w = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true))
            {
                foreach (var row in rows)
                {
                    w.Write("{\"index\":");
                    w.Write(row.Index.ToString(CultureInfo.InvariantCulture));
                    void Field(string name, double? v)
                    {
                        w.Write(",\"" + name + "\":");
                        w.Write(v is double d && double.IsFinite(d) ? d.ToString("R", CultureInfo.InvariantCulture) : "null");
                    }

                    if (row.Dropped is not null)
                    {
                        w.Write(",\"dropped\":");
                        w.Write(JsonSerializer.Serialize(row.Dropped));
                    }

                    Field("chosen_logps", row.Score?.ChosenLogps);
                    Field("rejected_logps", row.Score?.RejectedLogps);
                    if (withLosses)
                    {
                        Field("ref_chosen_logps", row.Loss?.RefChosenLogps);
                        Field("ref_rejected_logps", row.Loss?.RefRejectedLogps);
                        Field("chosen_reward", row.Loss?.ChosenReward);
                        Field("rejected_reward", row.Loss?.RejectedReward);
                        Field("loss", row.Loss?.Loss);
                    }

                    w.Write('}');
                    w.Write('\n');
                }
            }
        });
    }
}

/// <summary>One output row of <c>dposharp score</c>.</summary>
/// <param name="Index">0-based index of the input row.</param>
/// <param name="Score">The pair's log-probs, or null when dropped.</param>
/// <param name="Loss">Reference log-probs, rewards and loss (with a reference model), or null.</param>
/// <param name="Dropped">Why the row was not scored, or null.</param>
public sealed record ScoredRow(int Index, PairScore? Score, PairLossScore? Loss, string? Dropped);
