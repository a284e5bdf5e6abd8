using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Parquet.Schema;
using Parquet.Serialization;

namespace DpoSharp.Tests.TestSupport;

/// <summary>Writes the same rows as each supported file type, for loader tests.</summary>
public static class DataFiles
{
    /// <summary>File kinds the tests cover.</summary>
    public static readonly string[] Kinds = ["jsonl", "json-array", "json-object", "csv", "tsv", "parquet"];

    /// <summary>Writes <paramref name="rows"/> as <paramref name="kind"/> into <paramref name="dir"/>; returns the path.</summary>
    public static string Write(string dir, string name, string kind, IReadOnlyList<JsonObject> rows)
    {
        switch (kind)
        {
            case "jsonl":
                {
                    var path = Path.Combine(dir, name + ".jsonl");
                    File.WriteAllLines(path, rows.Select(r => r.ToJsonString()));
                    return path;
                }

            case "json-array":
                {
                    var path = Path.Combine(dir, name + ".json");
                    File.WriteAllText(path, new JsonArray(rows.Select(r => (JsonNode)r.DeepClone()).ToArray()).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                    return path;
                }

            case "json-object":
                {
                    var path = Path.Combine(dir, name + ".json");
                    var obj = new JsonObject { ["version"] = "1", ["data"] = new JsonArray(rows.Select(r => (JsonNode)r.DeepClone()).ToArray()) };
                    File.WriteAllText(path, obj.ToJsonString());
                    return path;
                }

            case "csv":
            case "tsv":
                {
                    var sep = kind == "csv" ? ',' : '\t';
                    var path = Path.Combine(dir, name + "." + kind);
                    var columns = rows[0].Select(p => p.Key).ToArray();
                    var sb = new StringBuilder();
                    sb.Append(string.Join(sep, columns.Select(c => Quote(c, sep)))).Append("\r\n");
                    foreach (var r in rows)
                    {
                        sb.Append(string.Join(sep, columns.Select(c => Quote(r[c] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : r[c]!.ToJsonString(), sep)))).Append("\r\n");
                    }

                    File.WriteAllText(path, sb.ToString());
                    return path;
                }

            case "parquet":
                {
                    var path = Path.Combine(dir, name + ".parquet");
                    WriteParquet(path, rows);
                    return path;
                }

            default:
                throw new ArgumentException(kind);
        }
    }

    /// <summary>RFC 4180 quoting: always quote, double the quotes.</summary>
    public static string Quote(string s, char sep) => "\"" + s.Replace("\"", "\"\"") + "\"";

    /// <summary>Writes rows with Parquet.Net: strings, lists of message structs, lists of ints.</summary>
    public static void WriteParquet(string path, IReadOnlyList<JsonObject> rows)
    {
        var fields = new List<Field>();
        foreach (var (key, value) in rows[0])
        {
            fields.Add(value switch
            {
                JsonArray a when a.Count > 0 && a[0] is JsonObject o => new ListField(key, new StructField("element", o.Select(p => (Field)new DataField<string>(p.Key)).ToArray())),
                JsonArray => new ListField(key, new DataField<int>("element")),
                JsonObject o => new StructField(key, o.Select(p => (Field)new DataField<string>(p.Key)).ToArray()),
                _ => new DataField<string>(key),
            });
        }

        var data = rows.Select(r => (IDictionary<string, object?>)r.ToDictionary(p => p.Key, p => Clr(p.Value))).ToList();
        using var fs = File.Create(path);
        ParquetSerializer.SerializeUntypedAsync(data, new ParquetSchema(fields), fs).GetAwaiter().GetResult();
    }

    private static object? Clr(JsonNode? node) => node switch
    {
        null => null,
        JsonArray a when a.Count > 0 && a[0] is JsonObject => a.Select(x => (IDictionary<string, object>)((JsonObject)x!).ToDictionary(p => p.Key, p => Clr(p.Value)!)).ToList(),
        JsonArray a => a.Select(x => x!.GetValue<int>()).ToList(),
        JsonObject o => o.ToDictionary(p => p.Key, p => Clr(p.Value)),
        JsonValue v => v.GetValue<string>(),
        _ => throw new ArgumentException(node.ToJsonString()),
    };

    /// <summary>Parses a JSON object literal (single quotes allowed for readability are NOT used: write real JSON).</summary>
    public static JsonObject Obj(string json) => (JsonObject)JsonNode.Parse(json)!;
}
