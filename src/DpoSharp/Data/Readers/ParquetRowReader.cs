using System.Collections;
using System.Text.Json.Nodes;
using Parquet.Serialization;

namespace DpoSharp.Data.Readers;

/// <summary>Reads a Parquet file (as written by Hugging Face datasets / pyarrow) into rows.</summary>
internal static class ParquetRowReader
{
    public static (List<RawRow> Rows, List<string> Columns) Read(string file)
    {
        if (new FileInfo(file).Length == 0)
        {
            throw new DpoSharpException($"{file}: the file is empty; it must hold at least one preference pair.");
        }

        Parquet.Serialization.DeserializationResult<Dictionary<string, object>> result;
        try
        {
            using var stream = File.OpenRead(file);
            result = ParquetSerializer.DeserializeUntypedAsync(stream).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is not DpoSharpException and not OutOfMemoryException)
        {
            throw new DpoSharpException($"{file}: not a readable Parquet file ({e.Message}).", e);
        }

        var columns = result.Schema.Fields.Select(f => f.Name).ToList();
        var rows = new List<RawRow>(result.Data.Count);
        foreach (var dict in result.Data)
        {
            var obj = new JsonObject();
            foreach (var column in columns)
            {
                // Parquet.Net leaves null cells out of the row; keep them as explicit nulls ("is null", not "missing").
                obj[column] = dict.TryGetValue(column, out var value) ? ToNode(value) : null;
            }

            rows.Add(new RawRow(rows.Count, null, obj));
        }

        if (rows.Count == 0)
        {
            throw new DpoSharpException($"{file}: the Parquet file has no rows; it must hold at least one preference pair.");
        }

        return (rows, columns);
    }

    private static JsonNode? ToNode(object? value) => value switch
    {
        null => null,
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        int i => JsonValue.Create(i),
        long l => JsonValue.Create(l),
        short s => JsonValue.Create(s),
        sbyte s => JsonValue.Create(s),
        byte s => JsonValue.Create(s),
        ushort s => JsonValue.Create(s),
        uint s => JsonValue.Create(s),
        ulong s => JsonValue.Create(s),
        float f => JsonValue.Create(f),
        double d => JsonValue.Create(d),
        decimal d => JsonValue.Create(d),
        byte[] bytes => JsonValue.Create(Convert.ToBase64String(bytes)),
        IDictionary dict => ToObject(dict),
        IEnumerable list => new JsonArray(list.Cast<object?>().Select(ToNode).ToArray()),
        _ => JsonValue.Create(value.ToString()),
    };

    private static JsonObject ToObject(IDictionary dict)
    {
        var obj = new JsonObject();
        foreach (DictionaryEntry e in dict)
        {
            obj[e.Key.ToString()!] = ToNode(e.Value);
        }

        return obj;
    }
}
