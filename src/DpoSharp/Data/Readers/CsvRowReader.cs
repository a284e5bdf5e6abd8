using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DpoSharp.Data.Readers;

/// <summary>
/// Reads CSV / TSV with RFC 4180 quoting: a header row, fields in double quotes may hold the delimiter, line breaks
/// and doubled quotes (<c>""</c>). Cells are strings; a cell holding a JSON message, a list of messages, or (in a <c>*_input_ids</c> column) a list of token ids is
/// read as that list.
/// </summary>
internal static class CsvRowReader
{
    public static List<RawRow> Read(string file, char delimiter)
    {
        var bytes = File.ReadAllBytes(file);
        var data = Utf8Validation.Check(bytes, file);
        var text = Encoding.UTF8.GetString(data.Span);
        if (string.IsNullOrWhiteSpace(text))
        {
            throw new DpoSharpException($"{file}: the file is empty; it must hold a header row and at least one preference pair.");
        }

        var records = Parse(text, delimiter, file);
        if (records.Count == 0)
        {
            throw new DpoSharpException($"{file}: no header row (the file holds only an unterminated quoted field or blank lines); it must hold a header row and at least one preference pair.");
        }

        var header = records[0].Fields;
        for (var i = 0; i < header.Count; i++)
        {
            if (header.IndexOf(header[i]) != i)
            {
                throw new DpoSharpException($"{file} line 1: the header names column '{header[i]}' twice.");
            }
        }

        var rows = new List<RawRow>(records.Count - 1);
        for (var r = 1; r < records.Count; r++)
        {
            var (line, fields) = records[r];
            if (fields.Count == 1 && fields[0].Length == 0)
            {
                continue; // blank line
            }

            var index = rows.Count;
            if (fields.Count != header.Count)
            {
                throw new DpoSharpException(
                    $"{file} row {index} (line {line}): {fields.Count} fields, but the header has {header.Count} " +
                    $"({string.Join(", ", header)}). Quote fields that contain the delimiter or line breaks.");
            }

            var obj = new JsonObject();
            for (var c = 0; c < header.Count; c++)
            {
                obj[header[c]] = Cell(header[c], fields[c]);
            }

            rows.Add(new RawRow(index, line, obj));
        }

        if (rows.Count == 0)
        {
            throw new DpoSharpException($"{file}: the file has a header but no rows; it must hold at least one preference pair.");
        }

        return rows;
    }

    private static JsonNode? Cell(string column, string value)
    {
        var t = value.AsSpan().Trim();
        if (t.Length >= 2 && ((t[0] == '[' && t[^1] == ']') || (t[0] == '{' && t[^1] == '}')))
        {
            try
            {
                var node = JsonNode.Parse(value, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false });
                if (node is JsonObject single && IsMessage(single))
                {
                    return single;
                }

                if (node is JsonArray array && array.Count > 0 &&
                    (array.All(x => x is JsonObject o && IsMessage(o)) ||
                     (column.EndsWith("_input_ids", StringComparison.Ordinal) && array.All(x => x is JsonValue v && v.GetValueKind() == JsonValueKind.Number))))
                {
                    return array;
                }
            }
            catch (JsonException)
            {
            }
        }

        return JsonValue.Create(value);
    }

    private static bool IsMessage(JsonObject o) =>
        (o.ContainsKey("role") && o.ContainsKey("content")) || (o.ContainsKey("from") && o.ContainsKey("value"));

    /// <summary>Splits into records of fields; each record carries the line it starts on.</summary>
    private static List<(int Line, List<string> Fields)> Parse(string text, char delimiter, string file)
    {
        var records = new List<(int, List<string>)>();
        var fields = new List<string>();
        var field = new StringBuilder();
        var line = 1;
        var recordLine = 1;
        var i = 0;
        var inQuotes = false;
        var quoteLine = 0;
        var fieldStart = true;
        while (i < text.Length)
        {
            var ch = text[i];
            if (inQuotes)
            {
                if (ch == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"')
                    {
                        field.Append('"');
                        i += 2;
                        continue;
                    }

                    inQuotes = false;
                    i++;
                    if (i < text.Length && text[i] != delimiter && text[i] != '\n' && text[i] != '\r')
                    {
                        throw new DpoSharpException(
                            $"{file} line {line}: unexpected character '{text[i]}' after a closing quote; double quotes inside a quoted field must be written as \"\".");
                    }

                    continue;
                }

                if (ch == '\n')
                {
                    line++;
                }

                field.Append(ch);
                i++;
                continue;
            }

            if (ch == '"' && fieldStart)
            {
                inQuotes = true;
                quoteLine = line;
                fieldStart = false;
                i++;
                continue;
            }

            if (ch == delimiter)
            {
                fields.Add(field.ToString());
                field.Clear();
                fieldStart = true;
                i++;
                continue;
            }

            if (ch == '\r' || ch == '\n')
            {
                fields.Add(field.ToString());
                field.Clear();
                records.Add((recordLine, fields));
                fields = [];
                fieldStart = true;
                i += ch == '\r' && i + 1 < text.Length && text[i + 1] == '\n' ? 2 : 1;
                line++;
                recordLine = line;
                continue;
            }

            fieldStart = false;
            field.Append(ch);
            i++;
        }

        if (inQuotes)
        {
            throw new DpoSharpException($"{file} line {quoteLine}: a quoted field is never closed (missing '\"').");
        }

        if (field.Length > 0 || fields.Count > 0)
        {
            fields.Add(field.ToString());
            records.Add((recordLine, fields));
        }

        return records;
    }
}
