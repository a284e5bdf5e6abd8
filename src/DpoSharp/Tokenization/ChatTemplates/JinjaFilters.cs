using System.Globalization;

namespace DpoSharp.Tokenization.ChatTemplates;

/// <summary>A filter: <c>value | name(args)</c>.</summary>
internal delegate object? FilterFunction(FilterCall call);

/// <summary>One application of a filter: the filtered value, the evaluated arguments, and the evaluator's services
/// (iteration, item access, tests, nested filters, errors at the filter's position).</summary>
internal sealed class FilterCall(JinjaEvaluator evaluator, JinjaEvaluator.Scope scope, FilterExpr expr, object? value, List<object?> args, Dictionary<string, object?> kwargs)
{
    public FilterExpr Expr => expr;

    public object? Value => value;

    public List<object?> Args => args;

    public Dictionary<string, object?> Kwargs => kwargs;

    /// <summary>Positional argument <paramref name="i"/>, else keyword <paramref name="name"/>, else <paramref name="def"/>.</summary>
    public object? Arg(int i, string name, object? def) => i < args.Count ? args[i] : kwargs.TryGetValue(name, out var x) ? x : def;

    public List<object?> Iterate(object? v) => evaluator.Iterate(v, expr.Pos);

    public object? GetItem(object? target, object? key) => evaluator.GetItem(target, key, expr.Pos, expr.Target);

    /// <summary>Applies test <paramref name="name"/> (as <c>select</c>/<c>selectattr</c> do).</summary>
    public bool Test(string name, object? v, List<object?> testArgs) => evaluator.ApplyTest(new TestExpr(expr.Target, name, [], false, expr.Pos), v, testArgs);

    /// <summary>Applies filter <paramref name="name"/> to <paramref name="item"/> with this call's arguments after
    /// the first (as <c>map('name', …)</c> does).</summary>
    public object? MapFilter(string name, object? item) =>
        evaluator.ApplyFilter(new FilterExpr(new LiteralExpr(item, expr.Pos), name, expr.Args.Skip(1).ToList(), [], expr.Pos), item, scope);

    public DpoSharpException Fail(string message) => evaluator.Fail(message, expr.Pos);
}

/// <summary>The filters templates can use, by name (Jinja's builtins that chat templates rely on).</summary>
internal static class JinjaFilters
{
    /// <summary>Every supported filter.</summary>
    public static IReadOnlyDictionary<string, FilterFunction> All { get; } = new Dictionary<string, FilterFunction>(StringComparer.Ordinal)
    {
        ["trim"] = Trim,
        ["length"] = Length,
        ["count"] = Length,
        ["tojson"] = ToJson,
        ["upper"] = c => Py.Str(c.Value).ToUpperInvariant(),
        ["lower"] = c => Py.Str(c.Value).ToLowerInvariant(),
        ["capitalize"] = c => Py.Capitalize(Py.Str(c.Value)),
        ["title"] = c => Py.Title(Py.Str(c.Value)),
        ["default"] = Default,
        ["d"] = Default,
        ["join"] = Join,
        ["first"] = c => c.Iterate(c.Value) is { Count: > 0 } fl ? fl[0] : Undefined.Instance,
        ["last"] = c => c.Iterate(c.Value) is { Count: > 0 } ll ? ll[^1] : Undefined.Instance,
        ["string"] = c => Py.Str(c.Value),
        ["int"] = Int,
        ["float"] = Float,
        ["abs"] = Abs,
        ["replace"] = Replace,
        ["items"] = Items,
        ["list"] = c => c.Iterate(c.Value).ToList(),
        ["reverse"] = c => c.Value is string rs ? string.Concat(Py.StringChars(rs).Select(Py.Str).Reverse()) : Enumerable.Reverse(c.Iterate(c.Value)).ToList(),
        ["unique"] = Unique,
        ["sort"] = Sort,
        ["selectattr"] = c => SelectAttr(c, select: true),
        ["rejectattr"] = c => SelectAttr(c, select: false),
        ["select"] = c => Select(c, select: true),
        ["reject"] = c => Select(c, select: false),
        ["map"] = Map,
        ["min"] = c => MinMax(c, "min"),
        ["max"] = c => MinMax(c, "max"),
        ["sum"] = c => c.Iterate(c.Value).Aggregate((object?)0L, (acc, x) => Py.Arith(acc, x, (p, q) => p + q, (p, q) => p + q)),
        ["round"] = Round,
        ["indent"] = Indent,
        ["safe"] = c => c.Value,
        ["wordcount"] = c => (long)Py.Str(c.Value).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length,
    };

    private static object? Trim(FilterCall c) =>
        c.Arg(0, "chars", null) is string chars ? Py.Str(c.Value).Trim(chars.ToCharArray()) : Py.Str(c.Value).Trim();

    private static object? Length(FilterCall c) => c.Value switch
    {
        string s => (long)Py.StringChars(s).Count,
        List<object?> l => (long)l.Count,
        Dictionary<string, object?> d => (long)d.Count,
        Undefined => 0L,
        _ => throw c.Fail($"a {Py.TypeName(c.Value)} has no length"),
    };

    private static object? ToJson(FilterCall c)
    {
        var indent = c.Arg(0, "indent", null) is long n ? (int?)Indentation(c, n) : null;
        string? itemSep = null, keySep = null;
        if (c.Kwargs.TryGetValue("separators", out var seps) && seps is List<object?> { Count: 2 } sl)
        {
            itemSep = Py.Str(sl[0]);
            keySep = Py.Str(sl[1]);
        }

        return Py.ToJson(c.Value, indent, itemSep, keySep);
    }

    private static object? Default(FilterCall c)
    {
        var boolean = Py.Truthy(c.Arg(1, "boolean", false));
        return c.Value is Undefined || (boolean && !Py.Truthy(c.Value)) ? c.Arg(0, "default_value", string.Empty) : c.Value;
    }

    private static object? Join(FilterCall c)
    {
        var sep = Py.Str(c.Arg(0, "d", string.Empty));
        var attribute = c.Arg(1, "attribute", null);
        var items = c.Iterate(c.Value);
        return Py.JoinBounded(sep, items.Select(x => Py.Str(attribute is null ? x : c.GetItem(x, attribute))));
    }

    private static object? Int(FilterCall c) => c.Value switch
    {
        long l => l,
        double d => (long)Math.Truncate(d),
        bool b => b ? 1L : 0L,
        string s when long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var p) => p,
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var pd) => (long)Math.Truncate(pd),
        _ => c.Arg(0, "default", 0L),
    };

    private static object? Float(FilterCall c) => c.Value switch
    {
        long or double or bool => Py.ToDouble(c.Value),
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var p) => p,
        _ => c.Arg(0, "default", 0.0),
    };

    private static object? Abs(FilterCall c) => c.Value switch
    {
        long l => (object)Math.Abs(l),
        double d => (object)Math.Abs(d),
        _ => throw c.Fail($"abs of a {Py.TypeName(c.Value)}"),
    };

    private static object? Replace(FilterCall c)
    {
        var s = Py.Str(c.Value);
        var old = Py.Str(c.Arg(0, "old", string.Empty));
        var @new = Py.Str(c.Arg(1, "new", string.Empty));
        return c.Arg(2, "count", null) is long n ? Py.ReplaceCount(s, old, @new, n) : old.Length == 0 ? s : Py.ReplaceCount(s, old, @new, long.MaxValue);
    }

    private static object? Items(FilterCall c) => c.Value switch
    {
        Dictionary<string, object?> d => d.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
        Undefined => new List<object?>(),
        _ => throw c.Fail($"items of a {Py.TypeName(c.Value)}"),
    };

    private static object? Unique(FilterCall c)
    {
        var result = new List<object?>();
        foreach (var x in c.Iterate(c.Value))
        {
            if (!result.Any(y => Py.Equals(x, y)))
            {
                result.Add(x);
            }
        }

        return result;
    }

    private static object? Sort(FilterCall c)
    {
        var attribute = c.Kwargs.TryGetValue("attribute", out var at) ? at : null;
        var reverse = Py.Truthy(c.Kwargs.TryGetValue("reverse", out var r) ? r : c.Args.Count > 0 ? c.Args[0] : false);
        var items = c.Iterate(c.Value).ToList();
        object? Key(object? x) => attribute is null ? x : c.GetItem(x, attribute);
        items.Sort((x, y) => Py.Compare(Key(x), Key(y)) ?? throw c.Fail("sort: values are not comparable"));
        if (reverse)
        {
            items.Reverse();
        }

        return items;
    }

    /// <summary><c>selectattr</c> / <c>rejectattr</c>: keep items whose attribute passes (fails) the test, or is truthy (falsy).</summary>
    private static object? SelectAttr(FilterCall c, bool select)
    {
        var a = c.Args;
        var attribute = Py.Str(c.Arg(0, "attr", null));
        return c.Iterate(c.Value).Where(x =>
        {
            var value = c.GetItem(x, attribute);
            var ok = a.Count < 2 ? Py.Truthy(value) : c.Test(Py.Str(a[1]), value, a.Skip(2).ToList());
            return ok == select;
        }).ToList();
    }

    /// <summary><c>select</c> / <c>reject</c>: keep items that pass (fail) the test, or are truthy (falsy).</summary>
    private static object? Select(FilterCall c, bool select)
    {
        var a = c.Args;
        return c.Iterate(c.Value).Where(x =>
        {
            var ok = a.Count < 1 ? Py.Truthy(x) : c.Test(Py.Str(a[0]), x, a.Skip(1).ToList());
            return ok == select;
        }).ToList();
    }

    private static object? Map(FilterCall c)
    {
        var items = c.Iterate(c.Value);
        if (c.Kwargs.TryGetValue("attribute", out var attribute))
        {
            var def = c.Kwargs.TryGetValue("default", out var dv) ? dv : Undefined.Instance;
            return items.Select(x => c.GetItem(x, attribute) is Undefined ? def : c.GetItem(x, attribute)).ToList();
        }

        if (c.Args.Count > 0 && c.Args[0] is string filterName)
        {
            return items.Select(x => c.MapFilter(filterName, x)).ToList();
        }

        throw c.Fail("map() needs attribute='…' or a filter name");
    }

    private static object? MinMax(FilterCall c, string name)
    {
        var items = c.Iterate(c.Value);
        if (items.Count == 0)
        {
            return Undefined.Instance;
        }

        var best = items[0];
        foreach (var x in items.Skip(1))
        {
            var cmp = Py.Compare(x, best) ?? throw c.Fail($"{name}: values are not comparable");
            if (name == "min" ? cmp < 0 : cmp > 0)
            {
                best = x;
            }
        }

        return best;
    }

    private static object? Round(FilterCall c)
    {
        var precision = c.Arg(0, "precision", 0L) is long p ? (int)p : 0;
        return Math.Round(Py.ToDouble(c.Value), precision, MidpointRounding.ToEven);
    }

    /// <summary>An indentation width of 0..<see cref="MaxIndent"/> (a wider one is a damaged template, not a layout).</summary>
    private static int Indentation(FilterCall c, long width) =>
        width is >= 0 and <= MaxIndent ? (int)width : throw c.Fail($"an indent of {width} (0..{MaxIndent} supported)");

    private const int MaxIndent = 1000;

    private static object? Indent(FilterCall c)
    {
        var width = c.Arg(0, "width", 4L) is long w ? Indentation(c, w) : 4;
        var first = Py.Truthy(c.Arg(1, "first", false));
        var pad = new string(' ', width);
        var lines = Py.Str(c.Value).Split('\n');
        return string.Join('\n', lines.Select((line, i) => (i == 0 && !first) || line.Length == 0 ? line : pad + line));
    }
}
