using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Unicode;

namespace DpoSharp.IO;

/// <summary>
/// The one way to read a JSON file a user hands us (configs, tokenizer files, indexes, adapter and trainer state
/// files): valid UTF-8, no duplicate keys, bounded size and depth, and typed accessors whose errors are a
/// <see cref="DpoSharpException"/> naming the file and the JSON path (<c>$.model.merges[3]</c>) with the type found.
/// </summary>
public static class JsonFile
{
    /// <summary>Largest JSON file read (a tokenizer.json of a 256k vocabulary is ~20 MB).</summary>
    public const long MaxBytes = 1L << 30;

    /// <summary>Options every JSON file is parsed with: comments and trailing commas allowed, duplicate keys refused.</summary>
    public static JsonDocumentOptions DocumentOptions { get; } = new()
    {
        AllowTrailingCommas = true,
        CommentHandling = JsonCommentHandling.Skip,
        AllowDuplicateProperties = false,
        MaxDepth = 256,
    };

    /// <summary>Reads and validates the bytes of <paramref name="path"/> (UTF-8, size), BOM stripped.</summary>
    /// <exception cref="DpoSharpException">The file is missing, unreadable, too large or not UTF-8.</exception>
    public static byte[] ReadBytes(string path)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw new DpoSharpException($"{path}: file not found.");
            }

            if (info.Length > MaxBytes)
            {
                throw new DpoSharpException($"{path}: {info.Length:N0} bytes, more than the {MaxBytes:N0} a JSON file may have here; is this the right file?");
            }

            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DpoSharpException($"{path}: cannot be read ({e.Message}).", e);
        }

        int start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        if (!Utf8.IsValid(bytes.AsSpan(start)))
        {
            int offset = start;
            while (offset < bytes.Length && Rune.DecodeFromUtf8(bytes.AsSpan(offset), out _, out var consumed) == System.Buffers.OperationStatus.Done)
            {
                offset += consumed;
            }

            var line = 1 + bytes.AsSpan(0, offset).Count((byte)'\n');
            throw new DpoSharpException($"{path}: invalid UTF-8 at byte offset {offset} (line {line}); save the file as UTF-8.");
        }

        return start == 0 ? bytes : bytes[start..];
    }

    /// <summary>Parses <paramref name="path"/> as JSON (null for the literal <c>null</c>).</summary>
    /// <exception cref="DpoSharpException">Not readable, not UTF-8, or not valid JSON (with line and byte).</exception>
    public static JsonNode? Parse(string path) => Parse(ReadBytes(path), path);

    /// <summary>Parses <paramref name="path"/>, which must hold a JSON object.</summary>
    public static JsonObject ParseObject(string path) =>
        Parse(path) as JsonObject ?? throw new DpoSharpException($"{path}: expected a JSON object ({{ … }}) at the top level.");

    /// <summary>Parses UTF-8 JSON <paramref name="utf8"/> read from <paramref name="source"/>.</summary>
    public static JsonNode? Parse(ReadOnlySpan<byte> utf8, string source)
    {
        try
        {
            var node = JsonNode.Parse(utf8, documentOptions: DocumentOptions);
            return node;
        }
        catch (JsonException e)
        {
            throw new DpoSharpException($"{source}: invalid JSON at line {(e.LineNumber ?? 0) + 1}, byte {(e.BytePositionInLine ?? 0) + 1}: {e.Message}", e);
        }
    }

    /// <summary>Parses <paramref name="path"/> as a <see cref="JsonDocument"/> (the caller disposes it).</summary>
    public static JsonDocument ParseDocument(string path)
    {
        var bytes = ReadBytes(path);
        try
        {
            return JsonDocument.Parse(bytes, DocumentOptions);
        }
        catch (JsonException e)
        {
            throw new DpoSharpException($"{path}: invalid JSON at line {(e.LineNumber ?? 0) + 1}, byte {(e.BytePositionInLine ?? 0) + 1}: {e.Message}", e);
        }
    }

    /// <summary>The value of <paramref name="node"/> as <typeparamref name="T"/> (string, bool, int, long, double);
    /// a wrong JSON type, a missing value or a number out of range names the file and the JSON path.</summary>
    public static T Value<T>(JsonNode? node, string file, string? path = null)
    {
        if (node is JsonValue v)
        {
            try
            {
                if (v.TryGetValue<T>(out var value) && (value is not double d || double.IsFinite(d)))
                {
                    return value;
                }
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or OverflowException)
            {
                // falls through to the error below
            }
        }

        throw WrongType(file, node, path, TypeName(typeof(T)));
    }

    /// <summary>An element that must be a JSON object.</summary>
    public static JsonObject Object(JsonNode? node, string file, string? path = null) =>
        node as JsonObject ?? throw WrongType(file, node, path, "an object");

    /// <summary>An element that must be a JSON array.</summary>
    public static JsonArray Array(JsonNode? node, string file, string? path = null) =>
        node as JsonArray ?? throw WrongType(file, node, path, "an array");

    /// <summary>
    /// Runs <paramref name="read"/>, which reads <paramref name="file"/> with unchecked accessors, and turns what
    /// those throw on a wrong JSON type (<see cref="InvalidOperationException"/>, <see cref="FormatException"/>,
    /// <see cref="OverflowException"/>, <see cref="KeyNotFoundException"/>, <see cref="NullReferenceException"/>,
    /// duplicate keys) into a <see cref="DpoSharpException"/> naming the file: the last line of defence behind
    /// <see cref="Value{T}"/>. <paramref name="what"/> names the part being read (e.g. "the pre_tokenizer").
    /// </summary>
    public static T Guard<T>(string file, string what, Func<T> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        try
        {
            return read();
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or OverflowException or KeyNotFoundException
            or NullReferenceException or InvalidCastException or IndexOutOfRangeException or ArgumentException)
        {
            throw new DpoSharpException($"{file}: {what} has a missing field or a field of the wrong type or value ({e.Message}). Compare the file with one written by Hugging Face, or regenerate it.", e);
        }
    }

    private static DpoSharpException WrongType(string file, JsonNode? node, string? path, string expected) =>
        new($"{file}: {path ?? node?.GetPath() ?? "a field"} must be {expected}, found {Describe(node)}.");

    private static string Describe(JsonNode? node) => node switch
    {
        null => "null or nothing",
        JsonObject => "an object",
        JsonArray => "an array",
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => "the string " + Shorten(v.ToJsonString()),
            JsonValueKind.Number => "the number " + Shorten(v.ToJsonString()),
            var k => Describe(k),
        },
        _ => "an unexpected value",
    };

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    private static string Shorten(string s) => s.Length <= 40 ? s : s[..37] + "…";

    private static string TypeName(Type t) =>
        t == typeof(string) ? "a string"
        : t == typeof(bool) ? "true or false"
        : t == typeof(int) || t == typeof(long) ? "an integer"
        : "a number";
}
