using System.Globalization;

namespace DpoSharp.Tokenization.ChatTemplates;

/// <summary>Expressions, by Jinja's precedence: conditional, or, and, not, comparisons, + -, ~, * / // %, **,
/// unary, filters and tests, postfix (attribute, item, slice, call), primary.</summary>
internal sealed partial class JinjaParser
{
    private Expr ParseExpr(bool allowCond = true)
    {
        if (++_exprDepth > MaxNesting)
        {
            throw Error($"an expression nested more than {MaxNesting} deep", Peek().Pos);
        }

        try
        {
            return ParseExprCore(allowCond);
        }
        finally
        {
            _exprDepth--;
        }
    }

    private Expr ParseExprCore(bool allowCond)
    {
        var e = ParseOr();
        if (allowCond && IsName("if"))
        {
            var pos = Next().Pos;
            var cond = ParseOr();
            Expr? otherwise = null;
            if (IsName("else"))
            {
                Next();
                otherwise = ParseExpr();
            }

            return new CondExpr(cond, e, otherwise, pos);
        }

        return e;
    }

    /// <summary>Runs a recursive parse one level deeper (bounded by <see cref="MaxNesting"/>).</summary>
    private Expr Nested(Func<Expr> parse)
    {
        if (++_exprDepth > MaxNesting)
        {
            throw Error($"an expression nested more than {MaxNesting} deep", Peek().Pos);
        }

        try
        {
            return parse();
        }
        finally
        {
            _exprDepth--;
        }
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (IsName("or"))
        {
            var pos = Next().Pos;
            left = new BinaryExpr("or", left, ParseAnd(), pos);
        }

        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (IsName("and"))
        {
            var pos = Next().Pos;
            left = new BinaryExpr("and", left, ParseNot(), pos);
        }

        return left;
    }

    private Expr ParseNot()
    {
        if (IsName("not"))
        {
            var pos = Next().Pos;
            return new UnaryExpr("not", Nested(ParseNot), pos);
        }

        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            var t = Peek();
            if (t.Kind == TokenKind.Operator && CompareOps.Contains(t.Value))
            {
                Next();
                rest.Add((t.Value, ParseMath1()));
            }
            else if (IsName("in"))
            {
                Next();
                rest.Add(("in", ParseMath1()));
            }
            else if (IsName("not") && IsName("in", 1))
            {
                Next();
                Next();
                rest.Add(("not in", ParseMath1()));
            }
            else
            {
                break;
            }
        }

        return rest.Count == 0 ? first : new CompareExpr(first, rest, first.Pos);
    }

    private Expr ParseMath1()
    {
        var left = ParseConcat();
        while (IsOp("+") || IsOp("-"))
        {
            var t = Next();
            left = new BinaryExpr(t.Value, left, ParseConcat(), t.Pos);
        }

        return left;
    }

    private Expr ParseConcat()
    {
        var left = ParseMath2();
        while (IsOp("~"))
        {
            var t = Next();
            left = new BinaryExpr("~", left, ParseMath2(), t.Pos);
        }

        return left;
    }

    private Expr ParseMath2()
    {
        var left = ParsePow();
        while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%"))
        {
            var t = Next();
            left = new BinaryExpr(t.Value, left, ParsePow(), t.Pos);
        }

        return left;
    }

    private Expr ParsePow()
    {
        var left = ParseUnary(true);
        while (IsOp("**"))
        {
            var t = Next();
            left = new BinaryExpr("**", left, ParseUnary(true), t.Pos);
        }

        return left;
    }

    private Expr ParseUnary(bool withFilter)
    {
        Expr node;
        if (IsOp("-") || IsOp("+"))
        {
            var t = Next();
            node = new UnaryExpr(t.Value, Nested(() => ParseUnary(false)), t.Pos);
        }
        else
        {
            node = ParsePostfix(ParsePrimary());
        }

        return withFilter ? ParseFilterExpr(node) : node;
    }

    private Expr ParsePrimary()
    {
        var t = Next();
        switch (t.Kind)
        {
            case TokenKind.Name:
                return t.Value switch
                {
                    "true" or "True" => new LiteralExpr(true, t.Pos),
                    "false" or "False" => new LiteralExpr(false, t.Pos),
                    "none" or "None" => new LiteralExpr(null, t.Pos),
                    _ => new NameExpr(t.Value, t.Pos),
                };
            case TokenKind.String:
                {
                    var s = t.Value;
                    while (Peek().Kind == TokenKind.String)
                    {
                        s += Next().Value;
                    }

                    return new LiteralExpr(s, t.Pos);
                }

            case TokenKind.Integer:
                return long.TryParse(t.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var integer)
                    ? new LiteralExpr(integer, t.Pos)
                    : throw Error($"the integer {(t.Value.Length > 30 ? t.Value[..30] + "…" : t.Value)} does not fit in 64 bits", t.Pos);
            case TokenKind.Float:
                return new LiteralExpr(double.Parse(t.Value, CultureInfo.InvariantCulture), t.Pos);
            case TokenKind.Operator when t.Value == "(":
                return ParseParenthesized(t);
            case TokenKind.Operator when t.Value == "[":
                return ParseListLiteral(t);
            case TokenKind.Operator when t.Value == "{":
                return ParseDictLiteral(t);

            default:
                throw Error($"unexpected {Describe(t)} in an expression", t.Pos);
        }
    }

    /// <summary>After '(': a parenthesized expression, or a tuple (as a list).</summary>
    private Expr ParseParenthesized(JinjaToken t)
    {
        if (IsOp(")"))
        {
            Next();
            return new ListExpr([], t.Pos);
        }

        var e = ParseExpr();
        if (IsOp(","))
        {
            var items = new List<Expr> { e };
            while (IsOp(","))
            {
                Next();
                if (IsOp(")"))
                {
                    break;
                }

                items.Add(ParseExpr());
            }

            ExpectOp(")");
            return new ListExpr(items, t.Pos);
        }

        ExpectOp(")");
        return e;
    }

    /// <summary>After '[': a list literal.</summary>
    private ListExpr ParseListLiteral(JinjaToken t)
    {
        var items = new List<Expr>();
        while (!IsOp("]"))
        {
            items.Add(ParseExpr());
            if (!IsOp(","))
            {
                break;
            }

            Next();
        }

        ExpectOp("]");
        return new ListExpr(items, t.Pos);
    }

    /// <summary>After '{': a dict literal.</summary>
    private DictExpr ParseDictLiteral(JinjaToken t)
    {
        var items = new List<(Expr, Expr)>();
        while (!IsOp("}"))
        {
            var k = ParseExpr();
            ExpectOp(":");
            items.Add((k, ParseExpr()));
            if (!IsOp(","))
            {
                break;
            }

            Next();
        }

        ExpectOp("}");
        return new DictExpr(items, t.Pos);
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            if (IsOp("."))
            {
                var dot = Next();
                var t = Next();
                if (t.Kind is not (TokenKind.Name or TokenKind.Integer))
                {
                    throw Error($"expected an attribute name after '.' but found {Describe(t)}", t.Pos);
                }

                node = t.Kind == TokenKind.Integer
                    ? new ItemExpr(node, new LiteralExpr(long.Parse(t.Value, CultureInfo.InvariantCulture), t.Pos), dot.Pos)
                    : new AttrExpr(node, t.Value, dot.Pos);
            }
            else if (IsOp("["))
            {
                var open = Next();
                Expr? start = null, stop = null, step = null;
                var isSlice = false;
                if (!IsOp(":"))
                {
                    start = ParseExpr();
                }

                if (IsOp(":"))
                {
                    isSlice = true;
                    Next();
                    if (!IsOp("]") && !IsOp(":"))
                    {
                        stop = ParseExpr();
                    }

                    if (IsOp(":"))
                    {
                        Next();
                        if (!IsOp("]"))
                        {
                            step = ParseExpr();
                        }
                    }
                }

                ExpectOp("]");
                node = isSlice ? new SliceExpr(node, start, stop, step, open.Pos) : new ItemExpr(node, start!, open.Pos);
            }
            else if (IsOp("("))
            {
                var open = Next();
                var (args, kwargs) = ParseArgs();
                node = new CallExpr(node, args, kwargs, open.Pos);
            }
            else
            {
                return node;
            }
        }
    }

    /// <summary>Arguments after '(' up to and including ')'.</summary>
    private (List<Expr> Args, List<(string, Expr)> Kwargs) ParseArgs()
    {
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!IsOp(")"))
        {
            if (Peek().Kind == TokenKind.Name && IsOp("=", 1))
            {
                var name = Next().Value;
                Next();
                kwargs.Add((name, ParseExpr()));
            }
            else
            {
                if (IsOp("*") || IsOp("**"))
                {
                    throw Error("*args / **kwargs in calls are not supported", Peek().Pos);
                }

                args.Add(ParseExpr());
            }

            if (!IsOp(","))
            {
                break;
            }

            Next();
        }

        ExpectOp(")");
        return (args, kwargs);
    }

    private Expr ParseFilterExpr(Expr node)
    {
        while (true)
        {
            if (IsOp("|"))
            {
                var bar = Next();
                var name = ExpectName();
                List<Expr> args = [];
                List<(string, Expr)> kwargs = [];
                if (IsOp("("))
                {
                    Next();
                    (args, kwargs) = ParseArgs();
                }

                node = new FilterExpr(node, name, args, kwargs, bar.Pos);
            }
            else if (IsName("is"))
            {
                var isTok = Next();
                var negated = false;
                if (IsName("not"))
                {
                    Next();
                    negated = true;
                }

                var name = ExpectName();
                var args = new List<Expr>();
                if (IsOp("("))
                {
                    Next();
                    (args, _) = ParseArgs();
                }
                else if (Peek().Kind is TokenKind.String or TokenKind.Integer or TokenKind.Float
                         || (Peek().Kind == TokenKind.Name && !TestArgStops.Contains(Peek().Value)))
                {
                    args.Add(ParsePostfix(ParsePrimary()));
                }

                node = new TestExpr(node, name, args, negated, isTok.Pos);
            }
            else
            {
                return node;
            }
        }
    }
}
