using System.Text.Json;
using System.Text.Json.Nodes;

namespace DpoSharp.Data.Readers;

/// <summary>Reads JSON Lines (one object per line) and JSON (an array of objects, or an object holding one).</summary>
internal static class JsonRowReader
{
    private static readonly JsonDocumentOptions DocOptions = new() { CommentHandling = JsonCommentHandling.Skip, AllowDuplicateProperties = false };

    /// <summary>Reads a <c>.jsonl</c> file.</summary>
    public static List<RawRow> ReadJsonLines(string file)
    {
        var bytes = ReadNonEmpty(file);
        var data = Utf8Validation.Check(bytes, file, (d, offset) => RowOfOffset(d.Span, offset));
        return ParseLines(data, file);
    }

    /// <summary>Reads a <c>.json</c> file: an array of objects, an object holding a list of objects, or JSON Lines.</summary>
    public static List<RawRow> ReadJson(string file, string? split)
    {
        var bytes = ReadNonEmpty(file);
        var data = Utf8Validation.Check(bytes, file);
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(data.Span, documentOptions: DocOptions);
        }
        catch (JsonException e)
        {
            // Hugging Face's json loader also accepts JSON Lines in a .json file.
            if (LooksLikeJsonLines(data.Span))
            {
                return ParseLines(data, file);
            }

            throw SyntaxError(file, e, lineOffset: 0, row: null);
        }

        return root switch
        {
            JsonArray array => RowsOfArray(array, file, "the top-level array"),
            JsonObject obj => RowsOfArray(FindList(obj, file, split), file, "the list"),
            _ => throw new DpoSharpException(
                $"{file}: expected a JSON array of objects (or an object holding one), found {Kind(root)}."),
        };
    }

    private static byte[] ReadNonEmpty(string file)
    {
        var bytes = File.ReadAllBytes(file);
        if (bytes.AsSpan().Trim(" \t\r\n"u8).Length == 0 || (bytes.Length == 3 && bytes[0] == 0xEF))
        {
            throw new DpoSharpException($"{file}: the file is empty; it must hold at least one preference pair.");
        }

        return bytes;
    }

    private static string RowOfOffset(ReadOnlySpan<byte> data, int offset)
    {
        var row = 0;
        var line = 1;
        var start = 0;
        for (var i = 0; i < offset; i++)
        {
            if (data[i] == (byte)'\n')
            {
                if (!data[start..i].Trim(" \t\r"u8).IsEmpty)
                {
                    row++;
                }

                line++;
                start = i + 1;
            }
        }

        return $"row {row} (line {line})";
    }

    private static bool LooksLikeJsonLines(ReadOnlySpan<byte> data)
    {
        var trimmed = data.TrimStart(" \t\r\n"u8);
        if (trimmed.IsEmpty || trimmed[0] != (byte)'{')
        {
            return false;
        }

        var nl = trimmed.IndexOf((byte)'\n');
        if (nl < 0)
        {
            return false;
        }

        try
        {
            return JsonNode.Parse(trimmed[..nl]) is JsonObject;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static List<RawRow> ParseLines(ReadOnlyMemory<byte> data, string file)
    {
        var rows = new List<RawRow>();
        var span = data.Span;
        var line = 0;
        while (!span.IsEmpty)
        {
            line++;
            var nl = span.IndexOf((byte)'\n');
            var text = nl < 0 ? span : span[..nl];
            span = nl < 0 ? [] : span[(nl + 1)..];
            if (text.Trim(" \t\r"u8).IsEmpty)
            {
                continue;
            }

            JsonNode? node;
            try
            {
                node = JsonNode.Parse(text, documentOptions: DocOptions);
            }
            catch (JsonException e)
            {
                throw SyntaxError(file, e, lineOffset: line - 1, row: rows.Count);
            }

            if (node is not JsonObject obj)
            {
                throw new DpoSharpException(
                    $"{file} row {rows.Count} (line {line}): expected a JSON object per line, found {Kind(node)}.");
            }

            rows.Add(new RawRow(rows.Count, line, obj));
        }

        if (rows.Count == 0)
        {
            throw new DpoSharpException($"{file}: the file is empty; it must hold at least one preference pair.");
        }

        return rows;
    }

    private static JsonArray FindList(JsonObject obj, string file, string? split)
    {
        // The Hugging Face datasets-server format: {"rows": [{"row_idx": 0, "row": {...}}, ...]}.
        var lists = obj.Where(p => p.Value is JsonArray a && a.Count > 0 && a.All(x => x is JsonObject)).ToList();
        if (lists.Count == 1)
        {
            return (JsonArray)lists[0].Value!;
        }

        foreach (var key in new[] { split, "train", "data", "rows" })
        {
            if (key is not null && lists.FirstOrDefault(p => p.Key == key).Value is JsonArray chosen)
            {
                return chosen;
            }
        }

        var keys = string.Join(", ", obj.Select(p => $"'{p.Key}' ({Kind(p.Value)})"));
        throw new DpoSharpException(lists.Count == 0
            ? $"{file}: the top-level object holds no list of row objects (keys: {keys}); expected an array of objects or an object with one."
            : $"{file}: the top-level object holds several lists of rows ({string.Join(", ", lists.Select(p => p.Key))}); pass --split to pick one.");
    }

    private static List<RawRow> RowsOfArray(JsonArray array, string file, string what)
    {
        if (array.Count == 0)
        {
            throw new DpoSharpException($"{file}: {what} is empty; it must hold at least one preference pair.");
        }

        var rows = new List<RawRow>(array.Count);
        for (var i = 0; i < array.Count; i++)
        {
            if (array[i] is not JsonObject obj)
            {
                throw new DpoSharpException($"{file} row {i}: expected a JSON object, found {Kind(array[i])}.");
            }

            if (obj["row"] is JsonObject inner && obj.ContainsKey("row_idx"))
            {
                obj = inner;
            }

            rows.Add(new RawRow(i, null, obj));
        }

        return rows;
    }

    private static DpoSharpException SyntaxError(string file, JsonException e, int lineOffset, int? row)
    {
        var line = (e.LineNumber ?? 0) + 1 + lineOffset;
        var column = (e.BytePositionInLine ?? 0) + 1;
        var where = row is int r ? $" row {r}" : "";
        var reason = e.Message;
        foreach (var tail in new[] { " Path:", " LineNumber:" })
        {
            var cut = reason.IndexOf(tail, StringComparison.Ordinal);
            if (cut > 0)
            {
                reason = reason[..cut];
            }
        }

        return new DpoSharpException($"{file}{where}: invalid JSON at line {line}, column {column}: {reason}", e);
    }

    /// <summary>"a string", "a number", ... for messages.</summary>
    public static string Kind(JsonNode? node) => node switch
    {
        null => "null",
        JsonObject => "an object",
        JsonArray => "a list",
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            _ => "a value",
        },
        _ => "a value",
    };
}
