using System.Globalization;
using System.Text;

namespace DpoSharp.Tokenization.ChatTemplates;

/// <summary>Executes a parsed template against a context (Jinja scoping: loop bodies and macros get their own scope).</summary>
internal sealed class JinjaEvaluator
{
    private readonly string _src;

    public JinjaEvaluator(string src) => _src = src;

    private enum Flow
    {
        Normal,
        Break,
        Continue,
    }

    public string Render(IReadOnlyList<Node> nodes, Dictionary<string, object?> context)
    {
        var globals = new Scope(null);
        globals.Vars["raise_exception"] = new JinjaCallable("raise_exception", (a, _) =>
            throw new ChatTemplateRaisedException(a.Count > 0 ? Py.Str(a[0]) : "raise_exception() called"));
        globals.Vars["namespace"] = new JinjaCallable("namespace", (a, kw) =>
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
        });
        globals.Vars["range"] = new JinjaCallable("range", (a, _) =>
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

            var list = new List<object?>();
            for (var i = start; step > 0 ? i < stop : i > stop; i += step)
            {
                list.Add(i);
            }

            return list;
        });
        globals.Vars["dict"] = new JinjaCallable("dict", (_, kw) => new Dictionary<string, object?>(kw, StringComparer.Ordinal));
        globals.Vars["strftime_now"] = new JinjaCallable("strftime_now", (a, _) => Strftime(DateTime.Now, a.Count > 0 ? Py.Str(a[0]) : "%Y-%m-%d"));
        var root = new Scope(globals);
        foreach (var (k, v) in context)
        {
            root.Vars[k] = Py.FromDotNet(v);
        }

        var sb = new StringBuilder();
        if (ExecBody(nodes, root, sb) != Flow.Normal)
        {
            throw new DpoSharpException("Chat template: '{% break %}' / '{% continue %}' outside a for loop.");
        }

        return sb.ToString();
    }

    private DpoSharpException Fail(string message, int pos) => new($"Chat template: {message} at {JinjaLexer.Where(_src, pos)}.");

    private Flow ExecBody(IReadOnlyList<Node> nodes, Scope scope, StringBuilder sb)
    {
        foreach (var n in nodes)
        {
            var f = Exec(n, scope, sb);
            if (f != Flow.Normal)
            {
                return f;
            }
        }

        return Flow.Normal;
    }

    private Flow Exec(Node node, Scope scope, StringBuilder sb)
    {
        switch (node)
        {
            case TextNode t:
                sb.Append(t.Text);
                return Flow.Normal;
            case OutputNode o:
                sb.Append(Py.Str(Eval(o.Expr, scope)));
                return Flow.Normal;
            case IfNode i:
                foreach (var (cond, body) in i.Branches)
                {
                    if (Py.Truthy(Eval(cond, scope)))
                    {
                        return ExecBody(body, scope, sb);
                    }
                }

                return ExecBody(i.Else, scope, sb);
            case ForNode f:
                return ExecFor(f, scope, sb);
            case SetNode s:
                ExecSet(s, scope);
                return Flow.Normal;
            case MacroNode m:
                scope.Vars[m.Name] = MakeMacro(m, scope);
                return Flow.Normal;
            case BreakNode:
                return Flow.Break;
            case ContinueNode:
                return Flow.Continue;
            default:
                throw Fail($"cannot execute {node.GetType().Name}", node.Pos);
        }
    }

    private Flow ExecFor(ForNode f, Scope scope, StringBuilder sb)
    {
        var iterable = Eval(f.Iter, scope);
        var items = Iterate(iterable, f.Iter.Pos);
        if (f.Filter is not null)
        {
            items = items.Where(item =>
            {
                var s = new Scope(scope);
                Bind(f.Targets, item, s, f.Pos);
                return Py.Truthy(Eval(f.Filter, s));
            }).ToList();
        }

        if (items.Count == 0)
        {
            return ExecBody(f.Else, scope, sb);
        }

        var loop = new LoopInfo(items);
        for (var i = 0; i < items.Count; i++)
        {
            loop.Index0 = i;
            var s = new Scope(scope);
            s.Vars["loop"] = loop;
            Bind(f.Targets, items[i], s, f.Pos);
            if (ExecBody(f.Body, s, sb) == Flow.Break)
            {
                break;
            }
        }

        return Flow.Normal;
    }

    private void Bind(IReadOnlyList<string> targets, object? item, Scope scope, int pos)
    {
        if (targets.Count == 1)
        {
            scope.Vars[targets[0]] = item;
            return;
        }

        var parts = item as List<object?> ?? throw Fail($"cannot unpack a {Py.TypeName(item)} into {targets.Count} names", pos);
        if (parts.Count != targets.Count)
        {
            throw Fail($"cannot unpack {parts.Count} values into {targets.Count} names", pos);
        }

        for (var i = 0; i < targets.Count; i++)
        {
            scope.Vars[targets[i]] = parts[i];
        }
    }

    private void ExecSet(SetNode s, Scope scope)
    {
        object? value;
        if (s.Body is not null)
        {
            var inner = new StringBuilder();
            ExecBody(s.Body, scope, inner);
            value = inner.ToString();
        }
        else
        {
            value = Eval(s.Value!, scope);
        }

        if (s.Attribute is not null)
        {
            var target = scope.Lookup(s.Targets[0]);
            if (target is not Namespace ns)
            {
                throw Fail($"'{s.Targets[0]}.{s.Attribute} = …' needs '{s.Targets[0]}' to be a namespace() (it is a {Py.TypeName(target)})", s.Pos);
            }

            ns.Values[s.Attribute] = value;
            return;
        }

        Bind(s.Targets, value, scope, s.Pos);
    }

    private JinjaCallable MakeMacro(MacroNode m, Scope defScope) => new(m.Name, (args, kwargs) =>
    {
        var s = new Scope(defScope);
        for (var i = 0; i < m.Parameters.Count; i++)
        {
            var (name, def) = m.Parameters[i];
            s.Vars[name] = i < args.Count ? args[i] : kwargs.TryGetValue(name, out var kv) ? kv : def is null ? Undefined.Instance : Eval(def, defScope);
        }

        var sb = new StringBuilder();
        ExecBody(m.Body, s, sb);
        return sb.ToString();
    });

    private List<object?> Iterate(object? v, int pos) => v switch
    {
        List<object?> l => l,
        Dictionary<string, object?> d => d.Keys.Cast<object?>().ToList(),
        string s => StringChars(s),
        Undefined => [],
        _ => throw Fail($"cannot iterate over a {Py.TypeName(v)}", pos),
    };

    private static List<object?> StringChars(string s)
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

    // ---- expressions ----

    private object? Eval(Expr e, Scope scope)
    {
        switch (e)
        {
            case LiteralExpr l:
                return l.Value;
            case NameExpr n:
                return scope.Lookup(n.Name);
            case AttrExpr a:
                return GetAttr(Eval(a.Target, scope), a.Name, a.Pos, a.Target);
            case ItemExpr it:
                return GetItem(Eval(it.Target, scope), Eval(it.Key, scope), it.Pos, it.Target);
            case SliceExpr sl:
                return Slice(Eval(sl.Target, scope), sl.Start is null ? null : Eval(sl.Start, scope), sl.Stop is null ? null : Eval(sl.Stop, scope), sl.Step is null ? null : Eval(sl.Step, scope), sl.Pos);
            case ListExpr le:
                return le.Items.Select(x => Eval(x, scope)).ToList();
            case DictExpr de:
                {
                    var d = new Dictionary<string, object?>(StringComparer.Ordinal);
                    foreach (var (k, v) in de.Items)
                    {
                        d[Py.Str(Eval(k, scope))] = Eval(v, scope);
                    }

                    return d;
                }

            case CondExpr c:
                return Py.Truthy(Eval(c.Cond, scope)) ? Eval(c.Then, scope) : c.Else is null ? Undefined.Instance : Eval(c.Else, scope);
            case UnaryExpr u:
                {
                    var v = Eval(u.Operand, scope);
                    return u.Op switch
                    {
                        "not" => !Py.Truthy(v),
                        "-" => v switch
                        {
                            long l => (object)(-l),
                            double d => (object)(-d),
                            bool b => (object)(b ? -1L : 0L),
                            _ => throw Fail($"bad operand type for unary -: {Py.TypeName(v)}", u.Pos),
                        },
                        _ => Py.IsNumber(v) ? v : throw Fail($"bad operand type for unary +: {Py.TypeName(v)}", u.Pos),
                    };
                }

            case BinaryExpr b:
                return EvalBinary(b, scope);
            case CompareExpr c:
                {
                    var left = Eval(c.First, scope);
                    foreach (var (op, rightExpr) in c.Rest)
                    {
                        var right = Eval(rightExpr, scope);
                        if (!CompareOp(op, left, right, c.Pos))
                        {
                            return false;
                        }

                        left = right;
                    }

                    return true;
                }

            case CallExpr call:
                return EvalCall(call, scope);
            case FilterExpr f:
                return ApplyFilter(f, Eval(f.Target, scope), scope);
            case TestExpr t:
                {
                    var r = ApplyTest(t, Eval(t.Target, scope), t.Args.Select(x => Eval(x, scope)).ToList());
                    return t.Negated ? !r : r;
                }

            default:
                throw Fail($"unsupported expression {e.GetType().Name}", e.Pos);
        }
    }

    private object? EvalBinary(BinaryExpr b, Scope scope)
    {
        if (b.Op == "and")
        {
            var l = Eval(b.Left, scope);
            return Py.Truthy(l) ? Eval(b.Right, scope) : l;
        }

        if (b.Op == "or")
        {
            var l = Eval(b.Left, scope);
            return Py.Truthy(l) ? l : Eval(b.Right, scope);
        }

        var left = Eval(b.Left, scope);
        var right = Eval(b.Right, scope);
        switch (b.Op)
        {
            case "~":
                return Py.Str(left) + Py.Str(right);
            case "+":
                return (left, right) switch
                {
                    (string x, string y) => x + y,
                    (List<object?> x, List<object?> y) => x.Concat(y).ToList(),
                    (long x, long y) => x + y,
                    _ when Py.IsNumber(left) && Py.IsNumber(right) => Arith(left, right, (x, y) => x + y, (x, y) => x + y),
                    _ => throw Fail($"cannot add {Py.TypeName(left)} and {Py.TypeName(right)} with '+' (use '~' to join as text)", b.Pos),
                };
            case "-":
                return Py.IsNumber(left) && Py.IsNumber(right) ? Arith(left, right, (x, y) => x - y, (x, y) => x - y) : throw Fail($"cannot subtract {Py.TypeName(right)} from {Py.TypeName(left)}", b.Pos);
            case "*":
                return (left, right) switch
                {
                    (string s, long n) => string.Concat(Enumerable.Repeat(s, (int)Math.Max(0, n))),
                    (long n, string s) => string.Concat(Enumerable.Repeat(s, (int)Math.Max(0, n))),
                    (List<object?> l, long n) => Enumerable.Repeat(l, (int)Math.Max(0, n)).SelectMany(x => x).ToList(),
                    _ when Py.IsNumber(left) && Py.IsNumber(right) => Arith(left, right, (x, y) => x * y, (x, y) => x * y),
                    _ => throw Fail($"cannot multiply {Py.TypeName(left)} and {Py.TypeName(right)}", b.Pos),
                };
            case "/":
                return Py.IsNumber(left) && Py.IsNumber(right)
                    ? (Py.ToDouble(right) == 0 ? throw Fail("division by zero", b.Pos) : Py.ToDouble(left) / Py.ToDouble(right))
                    : throw Fail($"cannot divide {Py.TypeName(left)} by {Py.TypeName(right)}", b.Pos);
            case "//":
                if (!Py.IsNumber(left) || !Py.IsNumber(right) || Py.ToDouble(right) == 0)
                {
                    throw Fail($"cannot floor-divide {Py.TypeName(left)} by {Py.TypeName(right)}", b.Pos);
                }

                return Arith(left, right, (x, y) => (long)Math.Floor((double)x / y), (x, y) => Math.Floor(x / y));
            case "%":
                if (!Py.IsNumber(left) || !Py.IsNumber(right))
                {
                    throw Fail($"'%' needs numbers ({Py.TypeName(left)} % {Py.TypeName(right)}); string formatting with '%' is not supported", b.Pos);
                }

                if (Py.ToDouble(right) == 0)
                {
                    throw Fail("modulo by zero", b.Pos);
                }

                return Arith(left, right, (x, y) => ((x % y) + y) % y, (x, y) => x - (y * Math.Floor(x / y)));
            case "**":
                return Py.IsNumber(left) && Py.IsNumber(right)
                    ? Arith(left, right, (x, y) => y >= 0 ? (long)Math.Pow(x, y) : throw Fail("negative integer power", b.Pos), Math.Pow)
                    : throw Fail($"cannot raise {Py.TypeName(left)} to {Py.TypeName(right)}", b.Pos);
            default:
                throw Fail($"unsupported operator '{b.Op}'", b.Pos);
        }
    }

    private static object Arith(object? a, object? b, Func<long, long, long> ints, Func<double, double, double> floats) =>
        a is (long or bool) && b is (long or bool)
            ? (object)ints(a is bool x ? (x ? 1 : 0) : (long)a!, b is bool y ? (y ? 1 : 0) : (long)b!)
            : (object)floats(Py.ToDouble(a), Py.ToDouble(b));

    private bool CompareOp(string op, object? a, object? b, int pos)
    {
        switch (op)
        {
            case "==":
                return Py.Equals(a, b);
            case "!=":
                return !Py.Equals(a, b);
            case "in":
                return Contains(b, a, pos);
            case "not in":
                return !Contains(b, a, pos);
        }

        var c = Py.Compare(a, b) ?? throw Fail($"'{op}' is not supported between a {Py.TypeName(a)} and a {Py.TypeName(b)}", pos);
        return op switch
        {
            "<" => c < 0,
            ">" => c > 0,
            "<=" => c <= 0,
            ">=" => c >= 0,
            _ => throw Fail($"unsupported comparison '{op}'", pos),
        };
    }

    private bool Contains(object? container, object? item, int pos) => container switch
    {
        string s => item is string sub ? s.Contains(sub, StringComparison.Ordinal) : throw Fail($"'in <string>' needs a string on the left, not a {Py.TypeName(item)}", pos),
        List<object?> l => l.Any(x => Py.Equals(x, item)),
        Dictionary<string, object?> d => item is string k && d.ContainsKey(k),
        Namespace ns => item is string k2 && ns.Values.ContainsKey(k2),
        Undefined => false,
        _ => throw Fail($"argument of type {Py.TypeName(container)} is not iterable", pos),
    };

    private object? GetAttr(object? target, string name, int pos, Expr targetExpr) => target switch
    {
        Dictionary<string, object?> d => d.TryGetValue(name, out var v) ? v : Undefined.Instance,
        Namespace ns => ns.Values.TryGetValue(name, out var v) ? v : Undefined.Instance,
        LoopInfo loop => loop.Get(name),
        Undefined => throw Fail($"'{Describe(targetExpr)}' is undefined (reading .{name})", pos),
        _ => Undefined.Instance,
    };

    private object? GetItem(object? target, object? key, int pos, Expr targetExpr)
    {
        switch (target)
        {
            case Dictionary<string, object?> d:
                return key is string k && d.TryGetValue(k, out var v) ? v : Undefined.Instance;
            case Namespace ns:
                return key is string k2 && ns.Values.TryGetValue(k2, out var v2) ? v2 : Undefined.Instance;
            case LoopInfo loop when key is string k3:
                return loop.Get(k3);
            case List<object?> l when key is long i:
                {
                    var idx = i < 0 ? l.Count + i : i;
                    return idx >= 0 && idx < l.Count ? l[(int)idx] : Undefined.Instance;
                }

            case string s when key is long i:
                {
                    var chars = StringChars(s);
                    var idx = i < 0 ? chars.Count + i : i;
                    return idx >= 0 && idx < chars.Count ? chars[(int)idx] : Undefined.Instance;
                }

            case Undefined:
                throw Fail($"'{Describe(targetExpr)}' is undefined (reading [{Py.Repr(key)}])", pos);
            default:
                return Undefined.Instance;
        }
    }

    private object? Slice(object? target, object? start, object? stop, object? step, int pos)
    {
        long? AsInt(object? v, string what) => v switch
        {
            null => null,
            long l => l,
            _ => throw Fail($"slice {what} must be an integer, not a {Py.TypeName(v)}", pos),
        };

        var st = AsInt(step, "step") ?? 1;
        if (st == 0)
        {
            throw Fail("slice step cannot be zero", pos);
        }

        List<object?> items = target switch
        {
            List<object?> l => l,
            string s => StringChars(s),
            Undefined => [],
            _ => throw Fail($"cannot slice a {Py.TypeName(target)}", pos),
        };
        var n = items.Count;
        long Norm(long? v, long def)
        {
            if (v is not long x)
            {
                return def;
            }

            if (x < 0)
            {
                x += n;
            }

            return st > 0 ? Math.Clamp(x, 0, n) : Math.Clamp(x, -1, n - 1);
        }

        var a = Norm(AsInt(start, "start"), st > 0 ? 0 : n - 1);
        var b = Norm(AsInt(stop, "stop"), st > 0 ? n : -1);
        var result = new List<object?>();
        for (var i = a; st > 0 ? i < b : i > b; i += st)
        {
            result.Add(items[(int)i]);
        }

        return target is string ? string.Concat(result.Select(Py.Str)) : result;
    }

    private static string Describe(Expr e) => e switch
    {
        NameExpr n => n.Name,
        AttrExpr a => Describe(a.Target) + "." + a.Name,
        ItemExpr i => Describe(i.Target) + "[" + (i.Key is LiteralExpr l ? Py.Repr(l.Value) : "…") + "]",
        _ => "value",
    };

    private object? EvalCall(CallExpr call, Scope scope)
    {
        var args = call.Args.Select(a => Eval(a, scope)).ToList();
        var kwargs = call.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value, scope), StringComparer.Ordinal);
        if (call.Callee is AttrExpr attr)
        {
            var target = Eval(attr.Target, scope);
            switch (target)
            {
                case string s:
                    return StringMethod(s, attr.Name, args, call.Pos);
                case Dictionary<string, object?> d when !d.ContainsKey(attr.Name) || d[attr.Name] is not JinjaCallable:
                    return DictMethod(d, attr.Name, args, call.Pos);
                case List<object?> l:
                    return ListMethod(l, attr.Name, args, call.Pos);
                case LoopInfo loop when attr.Name == "cycle":
                    return args.Count == 0 ? Undefined.Instance : args[loop.Index0 % args.Count];
            }

            var member = GetAttr(target, attr.Name, attr.Pos, attr.Target);
            return member is JinjaCallable mc ? mc.Invoke(args, kwargs) : throw Fail($"'{Describe(call.Callee)}' is not callable", call.Pos);
        }

        var callee = Eval(call.Callee, scope);
        return callee switch
        {
            JinjaCallable f => f.Invoke(args, kwargs),
            Undefined => throw Fail($"'{Describe(call.Callee)}' is undefined (not a function this engine provides)", call.Pos),
            _ => throw Fail($"a {Py.TypeName(callee)} is not callable", call.Pos),
        };
    }

    private object? StringMethod(string s, string name, List<object?> a, int pos)
    {
        string Arg(int i) => a.Count > i && a[i] is string x ? x : throw Fail($"str.{name}() expects a string argument", pos);
        char[]? Chars() => a.Count > 0 && a[0] is string c ? c.ToCharArray() : null;
        switch (name)
        {
            case "strip":
                return Chars() is { } c1 ? s.Trim(c1) : s.Trim();
            case "lstrip":
                return Chars() is { } c2 ? s.TrimStart(c2) : s.TrimStart();
            case "rstrip":
                return Chars() is { } c3 ? s.TrimEnd(c3) : s.TrimEnd();
            case "lower":
                return s.ToLowerInvariant();
            case "upper":
                return s.ToUpperInvariant();
            case "title":
                return Title(s);
            case "capitalize":
                return Capitalize(s);
            case "startswith":
            case "endswith":
                {
                    var options = a.Count > 0 && a[0] is List<object?> l ? l.Select(Py.Str).ToList() : [Arg(0)];
                    return name == "startswith"
                        ? options.Any(o => s.StartsWith(o, StringComparison.Ordinal))
                        : options.Any(o => s.EndsWith(o, StringComparison.Ordinal));
                }

            case "split":
            case "rsplit":
                {
                    var sep = a.Count > 0 && a[0] is string sp ? sp : null;
                    var max = a.Count > 1 && a[1] is long m ? (int)m : -1;
                    if (sep is null)
                    {
                        var parts = s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                        return parts.Cast<object?>().ToList();
                    }

                    if (sep.Length == 0)
                    {
                        throw Fail("str.split(): empty separator", pos);
                    }

                    var res = max < 0 ? s.Split(sep) : name == "split" ? s.Split(sep, max + 1) : RSplit(s, sep, max);
                    return res.Cast<object?>().ToList();
                }

            case "splitlines":
                return s.Split('\n').Select(x => (object?)x.TrimEnd('\r')).Where((x, i) => i < s.Split('\n').Length - 1 || ((string)x!).Length > 0).ToList();
            case "replace":
                return a.Count > 2 && a[2] is long cnt ? ReplaceCount(s, Arg(0), Arg(1), cnt) : s.Replace(Arg(0), Arg(1), StringComparison.Ordinal);
            case "find":
                return (long)s.IndexOf(Arg(0), StringComparison.Ordinal);
            case "rfind":
                return (long)s.LastIndexOf(Arg(0), StringComparison.Ordinal);
            case "count":
                return (long)(Arg(0).Length == 0 ? s.Length + 1 : (s.Length - s.Replace(Arg(0), string.Empty, StringComparison.Ordinal).Length) / Arg(0).Length);
            case "join":
                return string.Join(s, Iterate(a.Count > 0 ? a[0] : null, pos).Select(Py.Str));
            case "isdigit":
                return s.Length > 0 && s.All(char.IsDigit);
            case "isspace":
                return s.Length > 0 && s.All(char.IsWhiteSpace);
            case "format":
                {
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

            default:
                throw Fail($"unsupported string method '{name}()'", pos);
        }
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

    private static string ReplaceCount(string s, string old, string @new, long count)
    {
        var sb = new StringBuilder();
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

    private object? DictMethod(Dictionary<string, object?> d, string name, List<object?> a, int pos) => name switch
    {
        "get" => a.Count > 0 && a[0] is string k && d.TryGetValue(k, out var v) ? v : a.Count > 1 ? a[1] : null,
        "items" => d.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
        "keys" => d.Keys.Cast<object?>().ToList(),
        "values" => d.Values.ToList(),
        _ => throw Fail($"unsupported dict method '{name}()'", pos),
    };

    private object? ListMethod(List<object?> l, string name, List<object?> a, int pos) => name switch
    {
        "index" => (long)l.FindIndex(x => Py.Equals(x, a.Count > 0 ? a[0] : null)),
        "count" => (long)l.Count(x => Py.Equals(x, a.Count > 0 ? a[0] : null)),
        _ => throw Fail($"unsupported list method '{name}()' (templates are immutable, as in Hugging Face's sandbox)", pos),
    };

    private static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    private static string Title(string s)
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

    private object? ApplyFilter(FilterExpr f, object? v, Scope scope)
    {
        var a = f.Args.Select(x => Eval(x, scope)).ToList();
        var kw = f.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value, scope), StringComparer.Ordinal);
        object? Arg(int i, string name, object? def) => i < a.Count ? a[i] : kw.TryGetValue(name, out var x) ? x : def;
        switch (f.Name)
        {
            case "trim":
                return Arg(0, "chars", null) is string chars ? Py.Str(v).Trim(chars.ToCharArray()) : Py.Str(v).Trim();
            case "length":
            case "count":
                return v switch
                {
                    string s => (long)StringChars(s).Count,
                    List<object?> l => (long)l.Count,
                    Dictionary<string, object?> d => (long)d.Count,
                    Undefined => 0L,
                    _ => throw Fail($"a {Py.TypeName(v)} has no length", f.Pos),
                };
            case "tojson":
                {
                    var indent = Arg(0, "indent", null) is long n ? (int?)n : null;
                    string? itemSep = null, keySep = null;
                    if (kw.TryGetValue("separators", out var seps) && seps is List<object?> { Count: 2 } sl)
                    {
                        itemSep = Py.Str(sl[0]);
                        keySep = Py.Str(sl[1]);
                    }

                    return Py.ToJson(v, indent, itemSep, keySep);
                }

            case "upper":
                return Py.Str(v).ToUpperInvariant();
            case "lower":
                return Py.Str(v).ToLowerInvariant();
            case "capitalize":
                return Capitalize(Py.Str(v));
            case "title":
                return Title(Py.Str(v));
            case "default":
            case "d":
                {
                    var boolean = Py.Truthy(Arg(1, "boolean", false));
                    return v is Undefined || (boolean && !Py.Truthy(v)) ? Arg(0, "default_value", string.Empty) : v;
                }

            case "join":
                {
                    var sep = Py.Str(Arg(0, "d", string.Empty));
                    var attribute = Arg(1, "attribute", null);
                    var items = Iterate(v, f.Pos);
                    return string.Join(sep, items.Select(x => Py.Str(attribute is null ? x : GetItem(x, attribute, f.Pos, f.Target))));
                }

            case "first":
                return Iterate(v, f.Pos) is { Count: > 0 } fl ? fl[0] : Undefined.Instance;
            case "last":
                return Iterate(v, f.Pos) is { Count: > 0 } ll ? ll[^1] : Undefined.Instance;
            case "string":
                return Py.Str(v);
            case "int":
                return v switch
                {
                    long l => l,
                    double d => (long)Math.Truncate(d),
                    bool b => b ? 1L : 0L,
                    string s when long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var p) => p,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var pd) => (long)Math.Truncate(pd),
                    _ => Arg(0, "default", 0L),
                };
            case "float":
                return v switch
                {
                    long or double or bool => Py.ToDouble(v),
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var p) => p,
                    _ => Arg(0, "default", 0.0),
                };
            case "abs":
                return v switch
                {
                    long l => (object)Math.Abs(l),
                    double d => (object)Math.Abs(d),
                    _ => throw Fail($"abs of a {Py.TypeName(v)}", f.Pos),
                };
            case "replace":
                {
                    var s = Py.Str(v);
                    var old = Py.Str(Arg(0, "old", string.Empty));
                    var @new = Py.Str(Arg(1, "new", string.Empty));
                    return Arg(2, "count", null) is long c ? ReplaceCount(s, old, @new, c) : old.Length == 0 ? s : s.Replace(old, @new, StringComparison.Ordinal);
                }

            case "items":
                return v switch
                {
                    Dictionary<string, object?> d => d.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
                    Undefined => new List<object?>(),
                    _ => throw Fail($"items of a {Py.TypeName(v)}", f.Pos),
                };
            case "list":
                return Iterate(v, f.Pos).ToList();
            case "reverse":
                return v is string rs ? string.Concat(StringChars(rs).Select(Py.Str).Reverse()) : Enumerable.Reverse(Iterate(v, f.Pos)).ToList();
            case "unique":
                {
                    var result = new List<object?>();
                    foreach (var x in Iterate(v, f.Pos))
                    {
                        if (!result.Any(y => Py.Equals(x, y)))
                        {
                            result.Add(x);
                        }
                    }

                    return result;
                }

            case "sort":
                {
                    var attribute = kw.TryGetValue("attribute", out var at) ? at : null;
                    var reverse = Py.Truthy(kw.TryGetValue("reverse", out var r) ? r : a.Count > 0 ? a[0] : false);
                    var items = Iterate(v, f.Pos).ToList();
                    object? Key(object? x) => attribute is null ? x : GetItem(x, attribute, f.Pos, f.Target);
                    items.Sort((x, y) => Py.Compare(Key(x), Key(y)) ?? throw Fail("sort: values are not comparable", f.Pos));
                    if (reverse)
                    {
                        items.Reverse();
                    }

                    return items;
                }

            case "selectattr":
            case "rejectattr":
                {
                    var attribute = Py.Str(Arg(0, "attr", null));
                    var select = f.Name == "selectattr";
                    return Iterate(v, f.Pos).Where(x =>
                    {
                        var value = GetItem(x, attribute, f.Pos, f.Target);
                        var ok = a.Count < 2 ? Py.Truthy(value) : ApplyTest(new TestExpr(f.Target, Py.Str(a[1]), [], false, f.Pos), value, a.Skip(2).ToList());
                        return ok == select;
                    }).ToList();
                }

            case "select":
            case "reject":
                {
                    var select = f.Name == "select";
                    return Iterate(v, f.Pos).Where(x =>
                    {
                        var ok = a.Count < 1 ? Py.Truthy(x) : ApplyTest(new TestExpr(f.Target, Py.Str(a[0]), [], false, f.Pos), x, a.Skip(1).ToList());
                        return ok == select;
                    }).ToList();
                }

            case "map":
                {
                    var items = Iterate(v, f.Pos);
                    if (kw.TryGetValue("attribute", out var attribute))
                    {
                        var def = kw.TryGetValue("default", out var dv) ? dv : Undefined.Instance;
                        return items.Select(x => GetItem(x, attribute, f.Pos, f.Target) is Undefined ? def : GetItem(x, attribute, f.Pos, f.Target)).ToList();
                    }

                    if (a.Count > 0 && a[0] is string filterName)
                    {
                        return items.Select(x => ApplyFilter(new FilterExpr(new LiteralExpr(x, f.Pos), filterName, f.Args.Skip(1).ToList(), [], f.Pos), x, scope)).ToList();
                    }

                    throw Fail("map() needs attribute='…' or a filter name", f.Pos);
                }

            case "min":
            case "max":
                {
                    var items = Iterate(v, f.Pos);
                    if (items.Count == 0)
                    {
                        return Undefined.Instance;
                    }

                    var best = items[0];
                    foreach (var x in items.Skip(1))
                    {
                        var c = Py.Compare(x, best) ?? throw Fail($"{f.Name}: values are not comparable", f.Pos);
                        if (f.Name == "min" ? c < 0 : c > 0)
                        {
                            best = x;
                        }
                    }

                    return best;
                }

            case "sum":
                return Iterate(v, f.Pos).Aggregate((object?)0L, (acc, x) => Arith(acc, x, (p, q) => p + q, (p, q) => p + q));
            case "round":
                {
                    var precision = Arg(0, "precision", 0L) is long p ? (int)p : 0;
                    return Math.Round(Py.ToDouble(v), precision, MidpointRounding.ToEven);
                }

            case "indent":
                {
                    var width = Arg(0, "width", 4L) is long w ? (int)w : 4;
                    var first = Py.Truthy(Arg(1, "first", false));
                    var pad = new string(' ', width);
                    var lines = Py.Str(v).Split('\n');
                    return string.Join('\n', lines.Select((line, i) => (i == 0 && !first) || line.Length == 0 ? line : pad + line));
                }

            case "safe":
                return v;
            case "wordcount":
                return (long)Py.Str(v).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
            default:
                throw Fail($"unsupported filter '|{f.Name}'", f.Pos);
        }
    }

    private bool ApplyTest(TestExpr t, object? v, List<object?> a)
    {
        object? Arg0() => a.Count > 0 ? a[0] : throw Fail($"test '{t.Name}' needs an argument", t.Pos);
        return t.Name switch
        {
            "defined" => v is not Undefined,
            "undefined" => v is Undefined,
            "none" => v is null,
            "string" => v is string,
            "number" => v is long or double,
            "integer" => v is long,
            "float" => v is double,
            "boolean" => v is bool,
            "true" => v is true,
            "false" => v is false,
            "mapping" => v is Dictionary<string, object?> or Namespace,
            "sequence" or "iterable" => v is List<object?> or string or Dictionary<string, object?>,
            "callable" => v is JinjaCallable,
            "even" => v is long e && e % 2 == 0,
            "odd" => v is long o && o % 2 != 0,
            "divisibleby" => v is long d && Arg0() is long by && by != 0 && d % by == 0,
            "eq" or "equalto" or "==" => Py.Equals(v, Arg0()),
            "ne" or "!=" => !Py.Equals(v, Arg0()),
            "lt" or "lessthan" => CompareOp("<", v, Arg0(), t.Pos),
            "le" => CompareOp("<=", v, Arg0(), t.Pos),
            "gt" or "greaterthan" => CompareOp(">", v, Arg0(), t.Pos),
            "ge" => CompareOp(">=", v, Arg0(), t.Pos),
            "in" => Contains(Arg0(), v, t.Pos),
            "sameas" => (v is null && Arg0() is null) || (v is bool b1 && Arg0() is bool b2 && b1 == b2) || ReferenceEquals(v, Arg0()),
            "lower" => v is string ls && ls == ls.ToLowerInvariant(),
            "upper" => v is string us && us == us.ToUpperInvariant(),
            _ => throw Fail($"unsupported test 'is {t.Name}'", t.Pos),
        };
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

    /// <summary>A variable scope; lookups walk to the parent.</summary>
    private sealed class Scope(Scope? parent)
    {
        public Scope? Parent { get; } = parent;

        public Dictionary<string, object?> Vars { get; } = new(StringComparer.Ordinal);

        public object? Lookup(string name)
        {
            for (var s = this; s is not null; s = s.Parent)
            {
                if (s.Vars.TryGetValue(name, out var v))
                {
                    return v;
                }
            }

            return Undefined.Instance;
        }
    }
}

/// <summary>The chat template called <c>raise_exception(message)</c>: the input does not fit the template.</summary>
public sealed class ChatTemplateRaisedException : DpoSharpException
{
    /// <summary>Creates the exception with the template's own message.</summary>
    public ChatTemplateRaisedException(string templateMessage)
        : base($"The chat template rejected the conversation: {templateMessage}") => TemplateMessage = templateMessage;

    /// <summary>The message the template passed to <c>raise_exception</c>.</summary>
    public string TemplateMessage { get; }
}
