using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DpoSharp.Tests.TestSupport;

/// <summary>How <see cref="FileMutator"/> may change a file.</summary>
public enum MutationKind
{
    /// <summary>Text or JSON: byte mutations plus JSON-aware ones (a value replaced by one of another type).</summary>
    Json,

    /// <summary>Any text (CSV, YAML): byte mutations.</summary>
    Text,

    /// <summary>A safetensors file: byte mutations plus JSON-aware mutations of its header (length rewritten).</summary>
    SafeTensors,

    /// <summary>Binary (Parquet): byte mutations only.</summary>
    Binary,
}

/// <summary>
/// A seeded mutation fuzzer for files a user hands to dposharp: bit flips, truncation, inserted brackets, quotes,
/// huge numbers and NaN, duplicated and deleted spans, and (JSON) a value replaced by one of another JSON type
/// (numbers where strings are expected, objects where arrays are, huge and negative numbers). Deterministic per
/// (seed, case): a failing case is reproduced by its number.
/// </summary>
public static class FileMutator
{
    private static readonly string[] Inserts =
    [
        "[", "]", "{", "}", "\"", "'", ",", ":", "\\", "\n", "\0", "NaN", "Infinity", "-Infinity", "1e999", "-1", "0",
        "99999999999999999999", "2147483648", "-2147483649", "null", "true", "[]", "{}", "\"\"", "\uFFFD", "\u00e9", "%", "---\n", "&a *a", "!!binary",
    ];

    /// <summary>Mutates <paramref name="original"/> with 1–3 mutations chosen by <paramref name="rng"/>; <paramref name="description"/> says which.</summary>
    public static byte[] Mutate(byte[] original, MutationKind kind, Random rng, out string description)
    {
        var bytes = original;
        var what = new List<string>();
        int count = 1 + rng.Next(3);
        for (int i = 0; i < count; i++)
        {
            bool structural = kind is MutationKind.Json or MutationKind.SafeTensors && rng.Next(2) == 0;
            if (structural)
            {
                var mutated = kind == MutationKind.Json ? MutateJsonText(bytes, rng, out var d) : MutateSafeTensorsHeader(bytes, rng, out d);
                if (mutated is not null)
                {
                    bytes = mutated;
                    what.Add(d);
                    continue;
                }
            }

            bytes = MutateBytes(bytes, rng, out var desc);
            what.Add(desc);
        }

        description = string.Join("; ", what);
        return bytes;
    }

    private static byte[] MutateBytes(byte[] b, Random rng, out string description)
    {
        if (b.Length == 0)
        {
            description = "insert into empty";
            return Encoding.UTF8.GetBytes(Inserts[rng.Next(Inserts.Length)]);
        }

        int pos = rng.Next(b.Length);
        switch (rng.Next(6))
        {
            case 0:
                {
                    var c = (byte[])b.Clone();
                    int bit = rng.Next(8);
                    c[pos] ^= (byte)(1 << bit);
                    description = $"flip bit {bit} at {pos}";
                    return c;
                }

            case 1:
                description = $"truncate at {pos}";
                return b[..pos];
            case 2:
            case 3:
                {
                    var ins = Encoding.UTF8.GetBytes(Inserts[rng.Next(Inserts.Length)]);
                    description = $"insert {Printable(ins)} at {pos}";
                    return [.. b[..pos], .. ins, .. b[pos..]];
                }

            case 4:
                {
                    int len = Math.Min(b.Length - pos, 1 + rng.Next(64));
                    description = $"duplicate {len} bytes at {pos}";
                    return [.. b[..(pos + len)], .. b[pos..(pos + len)], .. b[(pos + len)..]];
                }

            default:
                {
                    int len = Math.Min(b.Length - pos, 1 + rng.Next(16));
                    description = $"delete {len} bytes at {pos}";
                    return [.. b[..pos], .. b[(pos + len)..]];
                }
        }
    }

    private static string Printable(byte[] ins) => JsonSerializer.Serialize(Encoding.UTF8.GetString(ins));

    private static byte[]? MutateJsonText(byte[] b, Random rng, out string description)
    {
        description = string.Empty;
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(b, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException)
        {
            return null;
        }

        if (root is null)
        {
            return null;
        }

        try
        {
            root = MutateTree(root, rng, out description);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            return null; // duplicate keys or invalid UTF-8 inside strings: byte mutations only
        }

        return Encoding.UTF8.GetBytes(root?.ToJsonString() ?? "null");
    }

    private static byte[]? MutateSafeTensorsHeader(byte[] b, Random rng, out string description)
    {
        description = string.Empty;
        if (b.Length < 8)
        {
            return null;
        }

        ulong len = BinaryPrimitives.ReadUInt64LittleEndian(b);
        if (len > (ulong)(b.Length - 8))
        {
            return null;
        }

        var header = MutateJsonText(b[8..(8 + (int)len)], rng, out description);
        if (header is null)
        {
            return null;
        }

        var result = new byte[8 + header.Length + (b.Length - 8 - (int)len)];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)header.Length);
        header.CopyTo(result, 8);
        b.AsSpan(8 + (int)len).CopyTo(result.AsSpan(8 + header.Length));
        description = "header: " + description;
        return result;
    }

    /// <summary>Replaces one node of the tree (chosen uniformly, root included) by a value of another kind; returns the new root.</summary>
    private static JsonNode? MutateTree(JsonNode root, Random rng, out string description)
    {
        var all = new List<JsonNode>();
        Collect(root, all);
        var target = all[rng.Next(all.Count)];
        var replacement = Replacement(target, rng);
        description = $"{target.GetPath()} := {replacement?.ToJsonString() ?? "null"}";
        if (target.Parent is null)
        {
            return replacement;
        }

        switch (target.Parent)
        {
            case JsonObject o:
                {
                    var key = o.First(kv => ReferenceEquals(kv.Value, target)).Key;
                    if (rng.Next(8) == 0)
                    {
                        o.Remove(key);
                        description = $"{target.GetPath()} removed";
                    }
                    else
                    {
                        o[key] = replacement;
                    }

                    break;
                }

            case JsonArray a:
                a[a.IndexOf(target)] = replacement;
                break;
        }

        return root;
    }

    private static void Collect(JsonNode node, List<JsonNode> all)
    {
        all.Add(node);
        switch (node)
        {
            case JsonObject o:
                foreach (var (_, v) in o)
                {
                    if (v is not null)
                    {
                        Collect(v, all);
                    }
                }

                break;
            case JsonArray a:
                foreach (var v in a)
                {
                    if (v is not null)
                    {
                        Collect(v, all);
                    }
                }

                break;
        }
    }

    private static JsonNode? Replacement(JsonNode target, Random rng)
    {
        var kind = target.GetValueKind();
        while (true)
        {
            JsonNode? r = rng.Next(12) switch
            {
                0 => JsonValue.Create(rng.Next(-3, 300)),
                1 => JsonValue.Create(long.MaxValue),
                2 => JsonValue.Create(-1),
                3 => JsonValue.Create(1.5),
                4 => JsonValue.Create("x"),
                5 => JsonValue.Create(string.Empty),
                6 => new JsonArray(JsonValue.Create(1), JsonValue.Create(2)),
                7 => new JsonArray(),
                8 => new JsonObject { ["a"] = 1 },
                9 => null,
                10 => JsonValue.Create(true),
                _ => JsonNode.Parse("1e300"),
            };
            var rk = r?.GetValueKind() ?? JsonValueKind.Null;
            if (rk != kind || rng.Next(4) == 0)
            {
                return r;
            }
        }
    }
}
