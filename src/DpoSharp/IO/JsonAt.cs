using System.Globalization;
using System.Text.Json;

namespace DpoSharp.IO;

/// <summary>
/// A <see cref="JsonElement"/> with the file it came from and its JSON path (<c>$.pre_tokenizer.pretokenizers[1]</c>):
/// the <see cref="JsonFile"/>-style typed accessors for readers that walk a <see cref="JsonDocument"/>. Every
/// accessor either returns a value of the expected JSON type or throws a <see cref="DpoSharpException"/> naming the
/// file, the JSON path and the type found.
/// </summary>
/// <param name="Element">The element.</param>
/// <param name="File">The file it was read from.</param>
/// <param name="Path">Its JSON path (<c>$</c> for the root).</param>
internal readonly record struct JsonAt(JsonElement Element, string File, string Path)
{
    /// <summary>The root of <paramref name="document"/> read from <paramref name="file"/>.</summary>
    public static JsonAt Root(JsonDocument document, string file) => new(document.RootElement, file, "$");

    /// <summary>The element's kind.</summary>
    public JsonValueKind Kind => Element.ValueKind;

    /// <summary>True for JSON <c>null</c>.</summary>
    public bool IsNull => Element.ValueKind == JsonValueKind.Null;

    /// <summary>The required member <paramref name="name"/> of this object (present and not null).</summary>
    public JsonAt Get(string name)
    {
        var child = Member(name);
        return child is { IsNull: false } c ? c : throw Missing(name);
    }

    /// <summary>The member <paramref name="name"/> of this object, or null when absent or JSON <c>null</c>.</summary>
    public JsonAt? Find(string name) => Member(name) is { IsNull: false } c ? c : null;

    /// <summary>This element, which must be a JSON object.</summary>
    public JsonAt Object() => Kind == JsonValueKind.Object ? this : throw WrongType("an object");

    /// <summary>The items of this element, which must be a JSON array, each with its path.</summary>
    public IEnumerable<JsonAt> Items()
    {
        if (Kind != JsonValueKind.Array)
        {
            throw WrongType("an array");
        }

        return Enumerate(this);

        static IEnumerable<JsonAt> Enumerate(JsonAt a)
        {
            int i = 0;
            foreach (var e in a.Element.EnumerateArray())
            {
                yield return new JsonAt(e, a.File, a.Path + "[" + i++.ToString(CultureInfo.InvariantCulture) + "]");
            }
        }
    }

    /// <summary>The members of this element, which must be a JSON object, each with its path.</summary>
    public IEnumerable<(string Name, JsonAt Value)> Members()
    {
        if (Kind != JsonValueKind.Object)
        {
            throw WrongType("an object");
        }

        return Enumerate(this);

        static IEnumerable<(string, JsonAt)> Enumerate(JsonAt o)
        {
            foreach (var p in o.Element.EnumerateObject())
            {
                yield return (p.Name, new JsonAt(p.Value, o.File, Child(o.Path, p.Name)));
            }
        }
    }

    /// <summary>The item <paramref name="index"/> of this array.</summary>
    public JsonAt At(int index)
    {
        if (Kind != JsonValueKind.Array)
        {
            throw WrongType("an array");
        }

        var path = Path + "[" + index.ToString(CultureInfo.InvariantCulture) + "]";
        return index < Element.GetArrayLength()
            ? new JsonAt(Element[index], File, path)
            : throw new DpoSharpException($"{File}: {path} is missing (the array has {Element.GetArrayLength()} item(s)).");
    }

    /// <summary>This element as a string.</summary>
    public string String() => Kind == JsonValueKind.String ? Element.GetString()! : throw WrongType("a string");

    /// <summary>This element as an int.</summary>
    public int Int32() => Kind == JsonValueKind.Number && Element.TryGetInt32(out var i) ? i : throw WrongType("an integer");

    /// <summary>This element as true or false.</summary>
    public bool Bool() => Kind is JsonValueKind.True or JsonValueKind.False ? Element.GetBoolean() : throw WrongType("true or false");

    /// <summary>Member <paramref name="name"/> as a string, or <paramref name="fallback"/> when absent or null.</summary>
    public string String(string name, string fallback) => Find(name)?.String() ?? fallback;

    /// <summary>Member <paramref name="name"/> as an int, or <paramref name="fallback"/> when absent or null.</summary>
    public int Int32(string name, int fallback) => Find(name)?.Int32() ?? fallback;

    /// <summary>Member <paramref name="name"/> as a bool, or <paramref name="fallback"/> when absent or null.</summary>
    public bool Bool(string name, bool fallback) => Find(name)?.Bool() ?? fallback;

    /// <summary>An error about this element: <c>file: $.path: <paramref name="problem"/></c>.</summary>
    public DpoSharpException Error(string problem) => new($"{File}: {Path}: {problem}");

    /// <summary>The wrong-type error: <c>file: $.path: expected X, found Y.</c></summary>
    public DpoSharpException WrongType(string expected) => Error($"expected {expected}, found {Describe(Element)}.");

    private JsonAt? Member(string name)
    {
        if (Kind != JsonValueKind.Object)
        {
            throw WrongType($"an object with \"{name}\"");
        }

        return Element.TryGetProperty(name, out var v) ? new JsonAt(v, File, Child(Path, name)) : null;
    }

    private DpoSharpException Missing(string name) => new($"{File}: {Child(Path, name)}: missing (or null); expected by {Path}.");

    private static string Child(string path, string name) =>
        name.Length > 0 && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') && !char.IsAsciiDigit(name[0])
            ? path + "." + name
            : path + "[" + JsonSerializer.Serialize(name, KeyOptions) + "]";

    /// <summary>Keys quoted as JSON, but readable: <c>["&lt;s&gt;"]</c>, not <c>["\u003Cs\u003E"]</c>.</summary>
    private static readonly JsonSerializerOptions KeyOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "the string " + Shorten(e.GetRawText()),
        JsonValueKind.Number => "the number " + Shorten(e.GetRawText()),
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };

    private static string Shorten(string s) => s.Length <= 40 ? s : s[..37] + "…";
}
