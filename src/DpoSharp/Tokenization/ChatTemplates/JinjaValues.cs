using System.Collections;
using System.Globalization;
using System.Text;

namespace DpoSharp.Tokenization.ChatTemplates;

/// <summary>Jinja's undefined value: renders as empty, is falsy, iterates as empty.</summary>
internal sealed class Undefined
{
    public static readonly Undefined Instance = new();

    private Undefined()
    {
    }
}

/// <summary><c>namespace(...)</c>: a mutable attribute bag that survives loop scopes.</summary>
internal sealed class Namespace
{
    public Dictionary<string, object?> Values { get; } = new(StringComparer.Ordinal);
}

/// <summary>The <c>loop</c> variable of a for loop.</summary>
internal sealed class LoopInfo(IReadOnlyList<object?> items)
{
    public int Index0 { get; set; }

    public IReadOnlyList<object?> Items => items;

    public object? Get(string name) => name switch
    {
        "index" => (long)(Index0 + 1),
        "index0" => (long)Index0,
        "revindex" => (long)(items.Count - Index0),
        "revindex0" => (long)(items.Count - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == items.Count - 1,
        "length" => (long)items.Count,
        "previtem" => Index0 > 0 ? items[Index0 - 1] : Undefined.Instance,
        "nextitem" => Index0 + 1 < items.Count ? items[Index0 + 1] : Undefined.Instance,
        "depth" => 1L,
        "depth0" => 0L,
        _ => Undefined.Instance,
    };
}

/// <summary>A callable: a macro or a global function.</summary>
internal sealed class JinjaCallable(string name, Func<List<object?>, Dictionary<string, object?>, object?> invoke)
{
    public string Name => name;

    public object? Invoke(List<object?> args, Dictionary<string, object?> kwargs) => invoke(args, kwargs);
}

/// <summary>Python-flavoured value semantics (truthiness, str(), repr(), ==, ordering) for template values.</summary>
internal static class Py
{
    public static bool Truthy(object? v) => v switch
    {
        null => false,
        Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        Dictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        Undefined => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        Dictionary<string, object?> => "dict",
        Namespace => "Namespace",
        JinjaCallable => "function",
        _ => v.GetType().Name,
    };

    /// <summary>Python's <c>str()</c> (what <c>{{ }}</c> prints).</summary>
    public static string Str(object? v) => v switch
    {
        null => "None",
        Undefined => string.Empty,
        string s => s,
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        _ => Repr(v),
    };

    /// <summary>Python's <c>repr()</c>.</summary>
    public static string Repr(object? v)
    {
        switch (v)
        {
            case string s:
                {
                    var quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
                    var sb = new StringBuilder().Append(quote);
                    foreach (var c in s)
                    {
                        sb.Append(c switch
                        {
                            '\\' => "\\\\",
                            '\n' => "\\n",
                            '\r' => "\\r",
                            '\t' => "\\t",
                            _ when c == quote => "\\" + c,
                            _ when c < 0x20 || c == 0x7f => $"\\x{(int)c:x2}",
                            _ => c.ToString(),
                        });
                    }

                    return sb.Append(quote).ToString();
                }

            case List<object?> l:
                return "[" + string.Join(", ", l.Select(Repr)) + "]";
            case Dictionary<string, object?> d:
                return "{" + string.Join(", ", d.Select(p => Repr(p.Key) + ": " + Repr(p.Value))) + "}";
            case Namespace:
                return "<Namespace>";
            case JinjaCallable f:
                return $"<function {f.Name}>";
            default:
                return Str(v);
        }
    }

    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d))
        {
            return "nan";
        }

        if (double.IsInfinity(d))
        {
            return d > 0 ? "inf" : "-inf";
        }

        var s = d.ToString("R", CultureInfo.InvariantCulture);
        if (s.Contains('E'))
        {
            // Python: 1e-05, 1e+20
            var parts = s.Split('E');
            var exp = int.Parse(parts[1], CultureInfo.InvariantCulture);
            return parts[0] + "e" + (exp < 0 ? "-" : "+") + Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture);
        }

        return s.Contains('.') ? s : s + ".0";
    }

    public static bool IsNumber(object? v) => v is long or double or bool;

    public static double ToDouble(object? v) => v switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new InvalidCastException(),
    };

    public static new bool Equals(object? a, object? b)
    {
        if (a is Undefined && b is Undefined)
        {
            return true;
        }

        if (IsNumber(a) && IsNumber(b))
        {
            return ToDouble(a) == ToDouble(b);
        }

        return (a, b) switch
        {
            (null, null) => true,
            (string x, string y) => string.Equals(x, y, StringComparison.Ordinal),
            (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => Equals(p.First, p.Second)),
            (Dictionary<string, object?> x, Dictionary<string, object?> y) => x.Count == y.Count && x.All(p => y.TryGetValue(p.Key, out var o) && Equals(p.Value, o)),
            _ => ReferenceEquals(a, b),
        };
    }

    /// <summary>Ordering for &lt; &gt; sort: numbers, strings, lists. Null when not comparable.</summary>
    public static int? Compare(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b))
        {
            return ToDouble(a).CompareTo(ToDouble(b));
        }

        if (a is string x && b is string y)
        {
            return Math.Sign(string.CompareOrdinal(x, y));
        }

        if (a is List<object?> la && b is List<object?> lb)
        {
            for (var i = 0; i < Math.Min(la.Count, lb.Count); i++)
            {
                var c = Compare(la[i], lb[i]);
                if (c != 0)
                {
                    return c;
                }
            }

            return la.Count.CompareTo(lb.Count);
        }

        return null;
    }

    /// <summary>Arithmetic with Python's int/float promotion (bools count as ints).</summary>
    public static object Arith(object? a, object? b, Func<long, long, long> ints, Func<double, double, double> floats) =>
        a is (long or bool) && b is (long or bool)
            ? (object)ints(a is bool x ? (x ? 1 : 0) : (long)a!, b is bool y ? (y ? 1 : 0) : (long)b!)
            : (object)floats(ToDouble(a), ToDouble(b));

    /// <summary>A string's characters as template values (surrogate pairs stay together).</summary>
    public static List<object?> StringChars(string s)
    {
        var list = new List<object?>();
        for (var i = 0; i < s.Length; i++)
        {
            var len = char.IsHighSurrogate(s[i]) && i + 1 < s.Length ? 2 : 1;
            list.Add(s.Substring(i, len));
            i += len - 1;
        }

        return list;
    }

    /// <summary>Python's <c>str.capitalize()</c>.</summary>
    public static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    /// <summary>Python's <c>str.title()</c>.</summary>
    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        var prevLetter = false;
        foreach (var c in s)
        {
            sb.Append(prevLetter ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            prevLetter = char.IsLetter(c);
        }

        return sb.ToString();
    }

    /// <summary>Python's <c>str.replace(old, new, count)</c>.</summary>
    /// <summary><paramref name="parts"/> joined by <paramref name="separator"/>, refused beyond <see cref="JinjaEvaluator.MaxText"/> characters.</summary>
    public static string JoinBounded(string separator, IEnumerable<string> parts)
    {
        var list = parts.ToList();
        long length = list.Sum(p => (long)p.Length) + (Math.Max(0, list.Count - 1) * (long)separator.Length);
        if (length > JinjaEvaluator.MaxText)
        {
            throw new DpoSharpException($"Chat template: join would build a text of {length:N0} characters, more than the {JinjaEvaluator.MaxText:N0} allowed.");
        }

        return string.Join(separator, list);
    }

    public static string ReplaceCount(string s, string old, string @new, long count)
    {
        // The most characters the result can have: every occurrence (or, for an empty old, every gap) replaced.
        long gaps = old.Length == 0 ? s.Length + 1L : s.Length / old.Length;
        long bound = s.Length + (Math.Min(gaps, Math.Max(0, count)) * Math.Max(0, @new.Length - old.Length));
        if (bound > JinjaEvaluator.MaxText)
        {
            throw new DpoSharpException($"Chat template: replace() could build a text of {bound:N0} characters, more than the {JinjaEvaluator.MaxText:N0} allowed.");
        }

        var sb = new StringBuilder();
        if (old.Length == 0)
        {
            // Python: the new text goes into every gap ("ab".replace("", "-") == "-a-b-"), at most count times.
            for (var i = 0; i <= s.Length; i++)
            {
                if (count-- > 0)
                {
                    sb.Append(@new);
                }

                if (i < s.Length)
                {
                    sb.Append(s[i]);
                }
            }

            return sb.ToString();
        }

        var pos = 0;
        while (count-- > 0)
        {
            var i = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (i < 0)
            {
                break;
            }

            sb.Append(s, pos, i - pos).Append(@new);
            pos = i + old.Length;
        }

        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    /// <summary>Converts .NET values handed to the renderer into template values.</summary>
    public static object? FromDotNet(object? v) => v switch
    {
        null => null,
        Undefined or string or bool or long or double or Namespace or JinjaCallable => v,
        int i => (long)i,
        short s => (long)s,
        byte b => (long)b,
        uint u => (long)u,
        float f => (double)f,
        decimal m => (double)m,
        char c => c.ToString(),
        ChatMessage m => new Dictionary<string, object?>(StringComparer.Ordinal) { ["role"] = m.Role, ["content"] = m.Content },
        System.Text.Json.JsonElement e => FromJson(e),
        IDictionary<string, object?> d => d.ToDictionary(p => p.Key, p => FromDotNet(p.Value), StringComparer.Ordinal),
        IReadOnlyDictionary<string, object?> d => d.ToDictionary(p => p.Key, p => FromDotNet(p.Value), StringComparer.Ordinal),
        IDictionary<string, string> d => d.ToDictionary(p => p.Key, p => (object?)p.Value, StringComparer.Ordinal),
        IDictionary d => d.Keys.Cast<object>().ToDictionary(k => Str(FromDotNet(k)), k => FromDotNet(d[k]), StringComparer.Ordinal),
        IEnumerable e => e.Cast<object?>().Select(FromDotNet).ToList(),
        _ => v,
    };

    private static object? FromJson(System.Text.Json.JsonElement e) => e.ValueKind switch
    {
        System.Text.Json.JsonValueKind.String => e.GetString(),
        System.Text.Json.JsonValueKind.Number => e.TryGetInt64(out var l) ? l : e.GetDouble(),
        System.Text.Json.JsonValueKind.True => true,
        System.Text.Json.JsonValueKind.False => false,
        System.Text.Json.JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        System.Text.Json.JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => FromJson(p.Value), StringComparer.Ordinal),
        _ => null,
    };

    /// <summary>Python's <c>json.dumps(v, ensure_ascii=False, indent=indent, separators=...)</c>, as Hugging Face's tojson.</summary>
    public static string ToJson(object? v, int? indent, string? itemSep = null, string? keySep = null)
    {
        var sb = new StringBuilder();
        itemSep ??= indent is null ? ", " : ",";
        keySep ??= ": ";
        WriteJson(sb, v, indent, 0, itemSep, keySep);
        return sb.ToString();
    }

    private static void WriteJson(StringBuilder sb, object? v, int? indent, int depth, string itemSep, string keySep)
    {
        switch (v)
        {
            case null or Undefined:
                sb.Append("null");
                break;
            case bool b:
                sb.Append(b ? "true" : "false");
                break;
            case long l:
                sb.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : FloatRepr(d));
                break;
            case string s:
                JsonString(sb, s);
                break;
            case List<object?> list:
                WriteContainer(sb, '[', ']', list.Count, indent, depth, itemSep, i => WriteJson(sb, list[i], indent, depth + 1, itemSep, keySep));
                break;
            case Dictionary<string, object?> dict:
                {
                    var entries = dict.ToList();
                    WriteContainer(sb, '{', '}', entries.Count, indent, depth, itemSep, i =>
                    {
                        JsonString(sb, entries[i].Key);
                        sb.Append(keySep);
                        WriteJson(sb, entries[i].Value, indent, depth + 1, itemSep, keySep);
                    });
                    break;
                }

            case Namespace ns:
                WriteJson(sb, ns.Values, indent, depth, itemSep, keySep);
                break;
            default:
                throw new DpoSharpException($"Chat template: tojson cannot serialize a {TypeName(v)}.");
        }
    }

    private static void WriteContainer(StringBuilder sb, char open, char close, int count, int? indent, int depth, string itemSep, Action<int> writeItem)
    {
        sb.Append(open);
        if (count == 0)
        {
            sb.Append(close);
            return;
        }

        for (var i = 0; i < count; i++)
        {
            if (i > 0)
            {
                sb.Append(itemSep);
            }

            if (indent is int n)
            {
                sb.Append('\n').Append(' ', n * (depth + 1));
            }

            writeItem(i);
        }

        if (indent is int m)
        {
            sb.Append('\n').Append(' ', m * depth);
        }

        sb.Append(close);
    }

    private static void JsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        sb.Append('"');
    }
}
