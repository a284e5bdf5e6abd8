using System.Text;

namespace DpoSharp.Tokenization.ChatTemplates;

/// <summary>Executes a parsed template against a context (Jinja scoping: loop bodies and macros get their own scope).</summary>
internal sealed class JinjaEvaluator
{
    /// <summary>Longest text a template may render or build (characters): a rendered prompt is far shorter.</summary>
    public const int MaxText = 1 << 23;

    /// <summary>Most statements and expressions one render may evaluate (a real chat template needs thousands).</summary>
    public const long MaxSteps = 1_000_000;

    /// <summary>Most items a template may build into one list (<c>range</c>, list repetition and concatenation).</summary>
    public const int MaxItems = 1_000_000;

    /// <summary>Deepest nesting of evaluation (expressions, blocks, macro calls) before the render stops.</summary>
    public const int MaxDepth = 400;

    private readonly string _src;
    private long _steps;
    private int _depth;

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
        JinjaGlobals.AddTo(globals.Vars);
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

    internal DpoSharpException Fail(string message, int pos) => new($"Chat template: {message} at {JinjaLexer.Where(_src, pos)}.");

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
        Enter(node.Pos);
        try
        {
            return ExecCore(node, scope, sb);
        }
        finally
        {
            _depth--;
        }
    }

    /// <summary>Counts one evaluation step and one level of nesting; throws past <see cref="MaxSteps"/> or <see cref="MaxDepth"/>.</summary>
    private void Enter(int pos)
    {
        if (++_steps > MaxSteps)
        {
            throw Fail($"the template ran for more than {MaxSteps:N0} steps (an endless or huge loop?); rendering stopped", pos);
        }

        if (++_depth > MaxDepth)
        {
            _depth--;
            throw Fail($"the template nests more than {MaxDepth} levels deep (runaway recursion?); rendering stopped", pos);
        }
    }

    /// <summary>Throws when a text of <paramref name="length"/> characters would exceed <see cref="MaxText"/>.</summary>
    internal void CheckLength(long length, int pos)
    {
        if (length > MaxText)
        {
            throw Fail($"the template builds a text of {length:N0} characters, more than the {MaxText:N0} allowed", pos);
        }
    }

    private Flow ExecCore(Node node, Scope scope, StringBuilder sb)
    {
        switch (node)
        {
            case TextNode t:
                CheckLength((long)sb.Length + t.Text.Length, node.Pos);
                sb.Append(t.Text);
                return Flow.Normal;
            case OutputNode o:
                {
                    var text = Py.Str(Eval(o.Expr, scope));
                    CheckLength((long)sb.Length + text.Length, node.Pos);
                    sb.Append(text);
                    return Flow.Normal;
                }

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
            if (++_steps > MaxSteps)
            {
                throw Fail($"the template ran for more than {MaxSteps:N0} steps (an endless or huge loop?); rendering stopped", f.Pos);
            }

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

    /// <summary>The size of <paramref name="count"/> repetitions of something of <paramref name="size"/> (saturating).</summary>
    private static long Repeated(long size, long count) => count <= 0 || size == 0 ? 0 : count > MaxText ? long.MaxValue : size * count;

    /// <summary><paramref name="build"/>() when a result of <paramref name="size"/> characters or items is within <see cref="MaxText"/>.</summary>
    private T Checked<T>(long size, int pos, Func<T> build)
    {
        CheckLength(size, pos);
        return build();
    }

    /// <summary><paramref name="build"/>() when a list of <paramref name="count"/> items is within <see cref="MaxItems"/>.</summary>
    private T CheckedItems<T>(long count, int pos, Func<T> build) =>
        count <= MaxItems ? build() : throw Fail($"the template builds a list of {count:N0} items, more than the {MaxItems:N0} allowed", pos);

    internal List<object?> Iterate(object? v, int pos) => v switch
    {
        List<object?> l => l,
        Dictionary<string, object?> d => d.Keys.Cast<object?>().ToList(),
        string s => Py.StringChars(s),
        Undefined => [],
        _ => throw Fail($"cannot iterate over a {Py.TypeName(v)}", pos),
    };

    // ---- expressions ----

    private object? Eval(Expr e, Scope scope)
    {
        Enter(e.Pos);
        try
        {
            return EvalCore(e, scope);
        }
        finally
        {
            _depth--;
        }
    }

    private object? EvalCore(Expr e, Scope scope)
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
                return EvalUnary(u, scope);
            case BinaryExpr b:
                return EvalBinary(b, scope);
            case CompareExpr c:
                return EvalCompare(c, scope);
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

    private object? EvalUnary(UnaryExpr u, Scope scope)
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

    private bool EvalCompare(CompareExpr c, Scope scope)
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
                {
                    string x = Py.Str(left), y = Py.Str(right);
                    CheckLength((long)x.Length + y.Length, b.Pos);
                    return x + y;
                }

            case "+":
                return (left, right) switch
                {
                    (string x, string y) => Checked(x.Length + (long)y.Length, b.Pos, () => x + y),
                    (List<object?> x, List<object?> y) => CheckedItems(x.Count + (long)y.Count, b.Pos, () => x.Concat(y).ToList()),
                    (long x, long y) => x + y,
                    _ when Py.IsNumber(left) && Py.IsNumber(right) => Py.Arith(left, right, (x, y) => x + y, (x, y) => x + y),
                    _ => throw Fail($"cannot add {Py.TypeName(left)} and {Py.TypeName(right)} with '+' (use '~' to join as text)", b.Pos),
                };
            case "-":
                return Py.IsNumber(left) && Py.IsNumber(right) ? Py.Arith(left, right, (x, y) => x - y, (x, y) => x - y) : throw Fail($"cannot subtract {Py.TypeName(right)} from {Py.TypeName(left)}", b.Pos);
            case "*":
                return (left, right) switch
                {
                    (string s, long n) => Checked(Repeated(s.Length, n), b.Pos, () => string.Concat(Enumerable.Repeat(s, (int)Math.Max(0, n)))),
                    (long n, string s) => Checked(Repeated(s.Length, n), b.Pos, () => string.Concat(Enumerable.Repeat(s, (int)Math.Max(0, n)))),
                    (List<object?> l, long n) => CheckedItems(Repeated(l.Count, n), b.Pos, () => Enumerable.Repeat(l, (int)Math.Max(0, n)).SelectMany(x => x).ToList()),
                    _ when Py.IsNumber(left) && Py.IsNumber(right) => Py.Arith(left, right, (x, y) => x * y, (x, y) => x * y),
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

                return Py.Arith(left, right, (x, y) => (long)Math.Floor((double)x / y), (x, y) => Math.Floor(x / y));
            case "%":
                if (!Py.IsNumber(left) || !Py.IsNumber(right))
                {
                    throw Fail($"'%' needs numbers ({Py.TypeName(left)} % {Py.TypeName(right)}); string formatting with '%' is not supported", b.Pos);
                }

                if (Py.ToDouble(right) == 0)
                {
                    throw Fail("modulo by zero", b.Pos);
                }

                return Py.Arith(left, right, (x, y) => ((x % y) + y) % y, (x, y) => x - (y * Math.Floor(x / y)));
            case "**":
                return Py.IsNumber(left) && Py.IsNumber(right)
                    ? Py.Arith(left, right, (x, y) => y >= 0 ? (long)Math.Pow(x, y) : throw Fail("negative integer power", b.Pos), Math.Pow)
                    : throw Fail($"cannot raise {Py.TypeName(left)} to {Py.TypeName(right)}", b.Pos);
            default:
                throw Fail($"unsupported operator '{b.Op}'", b.Pos);
        }
    }

    internal bool CompareOp(string op, object? a, object? b, int pos)
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

    internal bool Contains(object? container, object? item, int pos) => container switch
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

    internal object? GetItem(object? target, object? key, int pos, Expr targetExpr)
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
                    var chars = Py.StringChars(s);
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
            string s => Py.StringChars(s),
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
                    return JinjaMethods.CallString(s, new MethodCall(this, attr.Name, args, call.Pos));
                case Dictionary<string, object?> d when !d.ContainsKey(attr.Name) || d[attr.Name] is not JinjaCallable:
                    return JinjaMethods.CallDict(d, new MethodCall(this, attr.Name, args, call.Pos));
                case List<object?> l:
                    return JinjaMethods.CallList(l, new MethodCall(this, attr.Name, args, call.Pos));
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

    internal object? ApplyFilter(FilterExpr f, object? v, Scope scope)
    {
        var a = f.Args.Select(x => Eval(x, scope)).ToList();
        var kw = f.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value, scope), StringComparer.Ordinal);
        return JinjaFilters.All.TryGetValue(f.Name, out var filter)
            ? filter(new FilterCall(this, scope, f, v, a, kw))
            : throw Fail($"unsupported filter '|{f.Name}'", f.Pos);
    }

    internal bool ApplyTest(TestExpr t, object? v, List<object?> a) =>
        JinjaTests.All.TryGetValue(t.Name, out var test)
            ? test(new TestCall(this, t, v, a))
            : throw Fail($"unsupported test 'is {t.Name}'", t.Pos);

    /// <summary>A variable scope; lookups walk to the parent.</summary>
    internal sealed class Scope(Scope? parent)
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
