using System.Text;

namespace DpoSharp.Tokenization.ChatTemplates;

/// <summary>A Python <c>str</c> method: <c>s.name(args)</c>.</summary>
internal delegate object? StringMethodFunction(string s, MethodCall call);

/// <summary>One method call on a value: its name, evaluated positional arguments, and errors at the call's position.</summary>
internal sealed class MethodCall(JinjaEvaluator evaluator, string name, List<object?> args, int pos)
{
    public string Name => name;

    public List<object?> Args => args;

    /// <summary>Argument <paramref name="i"/>, which must be a string.</summary>
    public string StringArg(int i) => args.Count > i && args[i] is string x ? x : throw Fail($"str.{name}() expects a string argument");

    /// <summary>The characters of a string first argument (for strip and friends), or null.</summary>
    public char[]? Chars() => args.Count > 0 && args[0] is string c ? c.ToCharArray() : null;

    public List<object?> Iterate(object? v) => evaluator.Iterate(v, pos);

    public DpoSharpException Fail(string message) => evaluator.Fail(message, pos);
}

/// <summary>The Python methods templates can call on strings, dicts and lists.</summary>
internal static class JinjaMethods
{
    /// <summary>Every supported <c>str</c> method.</summary>
    public static IReadOnlyDictionary<string, StringMethodFunction> StringMethods { get; } = new Dictionary<string, StringMethodFunction>(StringComparer.Ordinal)
    {
        ["strip"] = (s, c) => c.Chars() is { } c1 ? s.Trim(c1) : s.Trim(),
        ["lstrip"] = (s, c) => c.Chars() is { } c2 ? s.TrimStart(c2) : s.TrimStart(),
        ["rstrip"] = (s, c) => c.Chars() is { } c3 ? s.TrimEnd(c3) : s.TrimEnd(),
        ["lower"] = (s, _) => s.ToLowerInvariant(),
        ["upper"] = (s, _) => s.ToUpperInvariant(),
        ["title"] = (s, _) => Py.Title(s),
        ["capitalize"] = (s, _) => Py.Capitalize(s),
        ["startswith"] = (s, c) => StartsOrEndsWith(s, c, start: true),
        ["endswith"] = (s, c) => StartsOrEndsWith(s, c, start: false),
        ["split"] = (s, c) => Split(s, c, right: false),
        ["rsplit"] = (s, c) => Split(s, c, right: true),
        ["splitlines"] = (s, _) => s.Split('\n').Select(x => (object?)x.TrimEnd('\r')).Where((x, i) => i < s.Split('\n').Length - 1 || ((string)x!).Length > 0).ToList(),
        ["replace"] = (s, c) => Py.ReplaceCount(s, c.StringArg(0), c.StringArg(1), c.Args.Count > 2 && c.Args[2] is long cnt ? cnt : long.MaxValue),
        ["find"] = (s, c) => (long)s.IndexOf(c.StringArg(0), StringComparison.Ordinal),
        ["rfind"] = (s, c) => (long)s.LastIndexOf(c.StringArg(0), StringComparison.Ordinal),
        ["count"] = (s, c) => (long)(c.StringArg(0).Length == 0 ? s.Length + 1 : (s.Length - s.Replace(c.StringArg(0), string.Empty, StringComparison.Ordinal).Length) / c.StringArg(0).Length),
        ["join"] = (s, c) => Py.JoinBounded(s, c.Iterate(c.Args.Count > 0 ? c.Args[0] : null).Select(Py.Str)),
        ["isdigit"] = (s, _) => s.Length > 0 && s.All(char.IsDigit),
        ["isspace"] = (s, _) => s.Length > 0 && s.All(char.IsWhiteSpace),
        ["format"] = Format,
    };

    /// <summary>Calls <c>s.name(args)</c>.</summary>
    public static object? CallString(string s, MethodCall call) =>
        StringMethods.TryGetValue(call.Name, out var method) ? method(s, call) : throw call.Fail($"unsupported string method '{call.Name}()'");

    /// <summary>Calls <c>d.name(args)</c>.</summary>
    public static object? CallDict(Dictionary<string, object?> d, MethodCall call)
    {
        var a = call.Args;
        return call.Name switch
        {
            "get" => a.Count > 0 && a[0] is string k && d.TryGetValue(k, out var v) ? v : a.Count > 1 ? a[1] : null,
            "items" => d.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
            "keys" => d.Keys.Cast<object?>().ToList(),
            "values" => d.Values.ToList(),
            _ => throw call.Fail($"unsupported dict method '{call.Name}()'"),
        };
    }

    /// <summary>Calls <c>l.name(args)</c> (read-only methods only).</summary>
    public static object? CallList(List<object?> l, MethodCall call)
    {
        var a = call.Args;
        return call.Name switch
        {
            "index" => (long)l.FindIndex(x => Py.Equals(x, a.Count > 0 ? a[0] : null)),
            "count" => (long)l.Count(x => Py.Equals(x, a.Count > 0 ? a[0] : null)),
            _ => throw call.Fail($"unsupported list method '{call.Name}()' (templates are immutable, as in Hugging Face's sandbox)"),
        };
    }

    private static object? StartsOrEndsWith(string s, MethodCall c, bool start)
    {
        var options = c.Args.Count > 0 && c.Args[0] is List<object?> l ? l.Select(Py.Str).ToList() : [c.StringArg(0)];
        return start
            ? options.Any(o => s.StartsWith(o, StringComparison.Ordinal))
            : options.Any(o => s.EndsWith(o, StringComparison.Ordinal));
    }

    private static object? Split(string s, MethodCall c, bool right)
    {
        var a = c.Args;
        var sep = a.Count > 0 && a[0] is string sp ? sp : null;
        var max = a.Count > 1 && a[1] is long m ? (int)m : -1;
        if (sep is null)
        {
            var parts = s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            return parts.Cast<object?>().ToList();
        }

        if (sep.Length == 0)
        {
            throw c.Fail("str.split(): empty separator");
        }

        var res = max < 0 ? s.Split(sep) : !right ? s.Split(sep, max + 1) : RSplit(s, sep, max);
        return res.Cast<object?>().ToList();
    }

    private static string[] RSplit(string s, string sep, int max)
    {
        var parts = new List<string>();
        var end = s.Length;
        while (max-- > 0)
        {
            var i = s.LastIndexOf(sep, end - 1 < 0 ? 0 : end - 1, StringComparison.Ordinal);
            if (i < 0 || end == 0)
            {
                break;
            }

            parts.Insert(0, s[(i + sep.Length)..end]);
            end = i;
        }

        parts.Insert(0, s[..end]);
        return [.. parts];
    }

    /// <summary><c>str.format</c> with positional <c>{}</c> fields only.</summary>
    private static object? Format(string s, MethodCall c)
    {
        var a = c.Args;
        var i = 0;
        var sb = new StringBuilder();
        for (var k = 0; k < s.Length; k++)
        {
            if (s[k] == '{' && k + 1 < s.Length && s[k + 1] == '}')
            {
                sb.Append(i < a.Count ? Py.Str(a[i++]) : string.Empty);
                k++;
            }
            else
            {
                sb.Append(s[k]);
            }
        }

        return sb.ToString();
    }
}
