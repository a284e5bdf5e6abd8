namespace DpoSharp.Tokenization.ChatTemplates;

/// <summary>A test: <c>value is name(args)</c>.</summary>
internal delegate bool TestFunction(TestCall call);

/// <summary>One application of a test: the tested value, the evaluated arguments, and the evaluator's comparisons.</summary>
internal sealed class TestCall(JinjaEvaluator evaluator, TestExpr expr, object? value, List<object?> args)
{
    public object? Value => value;

    /// <summary>The test's first argument; a test that needs one and has none is an error.</summary>
    public object? Arg0() => args.Count > 0 ? args[0] : throw evaluator.Fail($"test '{expr.Name}' needs an argument", expr.Pos);

    /// <summary><c>value op Arg0()</c> with the template's comparison semantics.</summary>
    public bool Compare(string op) => evaluator.CompareOp(op, value, Arg0(), expr.Pos);

    /// <summary><c>value in Arg0()</c>.</summary>
    public bool In() => evaluator.Contains(Arg0(), value, expr.Pos);
}

/// <summary>The tests templates can use after <c>is</c>, by name (Jinja's builtins).</summary>
internal static class JinjaTests
{
    /// <summary>Every supported test.</summary>
    public static IReadOnlyDictionary<string, TestFunction> All { get; } = new Dictionary<string, TestFunction>(StringComparer.Ordinal)
    {
        ["defined"] = c => c.Value is not Undefined,
        ["undefined"] = c => c.Value is Undefined,
        ["none"] = c => c.Value is null,
        ["string"] = c => c.Value is string,
        ["number"] = c => c.Value is long or double,
        ["integer"] = c => c.Value is long,
        ["float"] = c => c.Value is double,
        ["boolean"] = c => c.Value is bool,
        ["true"] = c => c.Value is true,
        ["false"] = c => c.Value is false,
        ["mapping"] = c => c.Value is Dictionary<string, object?> or Namespace,
        ["sequence"] = IsSequence,
        ["iterable"] = IsSequence,
        ["callable"] = c => c.Value is JinjaCallable,
        ["even"] = c => c.Value is long e && e % 2 == 0,
        ["odd"] = c => c.Value is long o && o % 2 != 0,
        ["divisibleby"] = c => c.Value is long d && c.Arg0() is long by && by != 0 && d % by == 0,
        ["eq"] = Eq,
        ["equalto"] = Eq,
        ["=="] = Eq,
        ["ne"] = Ne,
        ["!="] = Ne,
        ["lt"] = c => c.Compare("<"),
        ["lessthan"] = c => c.Compare("<"),
        ["le"] = c => c.Compare("<="),
        ["gt"] = c => c.Compare(">"),
        ["greaterthan"] = c => c.Compare(">"),
        ["ge"] = c => c.Compare(">="),
        ["in"] = c => c.In(),
        ["sameas"] = c => (c.Value is null && c.Arg0() is null) || (c.Value is bool b1 && c.Arg0() is bool b2 && b1 == b2) || ReferenceEquals(c.Value, c.Arg0()),
        ["lower"] = c => c.Value is string ls && ls == ls.ToLowerInvariant(),
        ["upper"] = c => c.Value is string us && us == us.ToUpperInvariant(),
    };

    private static bool IsSequence(TestCall c) => c.Value is List<object?> or string or Dictionary<string, object?>;

    private static bool Eq(TestCall c) => Py.Equals(c.Value, c.Arg0());

    private static bool Ne(TestCall c) => !Py.Equals(c.Value, c.Arg0());
}
