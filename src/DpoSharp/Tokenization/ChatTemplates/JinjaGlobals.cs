using System.Globalization;
using System.Text;

namespace DpoSharp.Tokenization.ChatTemplates;

/// <summary>The global functions templates can call: <c>raise_exception</c>, <c>namespace</c>, <c>range</c>,
/// <c>dict</c>, <c>strftime_now</c>.</summary>
internal static class JinjaGlobals
{
    /// <summary>Defines every global function in <paramref name="vars"/>.</summary>
    public static void AddTo(Dictionary<string, object?> vars)
    {
        vars["raise_exception"] = new JinjaCallable("raise_exception", (a, _) =>
            throw new ChatTemplateRaisedException(a.Count > 0 ? Py.Str(a[0]) : "raise_exception() called"));
        vars["namespace"] = new JinjaCallable("namespace", (a, kw) => MakeNamespace(a, kw));
        vars["range"] = new JinjaCallable("range", (a, _) => Range(a));
        vars["dict"] = new JinjaCallable("dict", (_, kw) => new Dictionary<string, object?>(kw, StringComparer.Ordinal));
        vars["strftime_now"] = new JinjaCallable("strftime_now", (a, _) => Strftime(DateTime.Now, a.Count > 0 ? Py.Str(a[0]) : "%Y-%m-%d"));
    }

    private static Namespace MakeNamespace(List<object?> a, Dictionary<string, object?> kw)
    {
        var ns = new Namespace();
        foreach (var d in a.OfType<Dictionary<string, object?>>())
        {
            foreach (var (k, v) in d)
            {
                ns.Values[k] = v;
            }
        }

        foreach (var (k, v) in kw)
        {
            ns.Values[k] = v;
        }

        return ns;
    }

    private static List<object?> Range(List<object?> a)
    {
        var n = a.Select(x => x is long l ? l : throw new DpoSharpException("Chat template: range() takes integers.")).ToList();
        var (start, stop, step) = n.Count switch
        {
            1 => (0L, n[0], 1L),
            2 => (n[0], n[1], 1L),
            3 => (n[0], n[1], n[2]),
            _ => throw new DpoSharpException("Chat template: range() takes 1 to 3 arguments."),
        };
        if (step == 0)
        {
            throw new DpoSharpException("Chat template: range() step must not be zero.");
        }

        var count = step > 0 ? (stop > start ? ((double)stop - start) / step : 0) : (start > stop ? ((double)start - stop) / -step : 0);
        if (count > JinjaEvaluator.MaxItems)
        {
            throw new DpoSharpException($"Chat template: range() of {Math.Ceiling(count):N0} numbers, more than the {JinjaEvaluator.MaxItems:N0} allowed.");
        }

        var list = new List<object?>();
        for (var i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            list.Add(i);
        }

        return list;
    }

    private static string Strftime(DateTime now, string format)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                sb.Append(format[i]);
                continue;
            }

            var c = format[++i];
            sb.Append(c switch
            {
                'Y' => now.ToString("yyyy", CultureInfo.InvariantCulture),
                'm' => now.ToString("MM", CultureInfo.InvariantCulture),
                'd' => now.ToString("dd", CultureInfo.InvariantCulture),
                'H' => now.ToString("HH", CultureInfo.InvariantCulture),
                'M' => now.ToString("mm", CultureInfo.InvariantCulture),
                'S' => now.ToString("ss", CultureInfo.InvariantCulture),
                'b' => now.ToString("MMM", CultureInfo.InvariantCulture),
                'B' => now.ToString("MMMM", CultureInfo.InvariantCulture),
                'a' => now.ToString("ddd", CultureInfo.InvariantCulture),
                'A' => now.ToString("dddd", CultureInfo.InvariantCulture),
                'y' => now.ToString("yy", CultureInfo.InvariantCulture),
                '%' => "%",
                _ => "%" + c,
            });
        }

        return sb.ToString();
    }
}
