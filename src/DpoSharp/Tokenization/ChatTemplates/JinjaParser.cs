namespace DpoSharp.Tokenization.ChatTemplates;

/// <summary>Recursive-descent parser for the Jinja subset chat templates use (Jinja's operator precedence). This part:
/// tags and statement bodies; expressions are in <c>JinjaParser.Expressions.cs</c>.</summary>
internal sealed partial class JinjaParser
{
    private static readonly HashSet<string> CompareOps = ["==", "!=", "<", ">", "<=", ">="];
    private static readonly HashSet<string> TestArgStops = ["else", "or", "and", "if", "in", "not", "is"];

    private readonly string _src;
    private readonly List<JinjaToken> _tokens;
    private readonly Stack<(string Opener, int Pos, string Closer)> _open = new();
    private int _i;
    private int _blockStart;
    private int _exprDepth;

    /// <summary>Deepest nesting of blocks or of expressions a template may have (real templates nest a handful).</summary>
    private const int MaxNesting = 100;

    private JinjaParser(string src, List<JinjaToken> tokens)
    {
        _src = src;
        _tokens = tokens;
    }

    public static List<Node> Parse(string template)
    {
        var p = new JinjaParser(template, JinjaLexer.Tokenize(template));
        var (nodes, _) = p.ParseBody(null, -1, []);
        return nodes;
    }

    private JinjaToken Peek(int ahead = 0) => _tokens[Math.Min(_i + ahead, _tokens.Count - 1)];

    private JinjaToken Next() => _tokens[Math.Min(_i++, _tokens.Count - 1)];

    private string Where(int pos) => JinjaLexer.Where(_src, pos);

    private DpoSharpException Error(string message, int pos) => new($"Chat template: {message} at {Where(pos)}.");

    private bool IsOp(string op, int ahead = 0) => Peek(ahead).Kind == TokenKind.Operator && Peek(ahead).Value == op;

    private bool IsName(string name, int ahead = 0) => Peek(ahead).Kind == TokenKind.Name && Peek(ahead).Value == name;

    private void ExpectOp(string op)
    {
        var t = Next();
        if (t.Kind != TokenKind.Operator || t.Value != op)
        {
            throw Error($"expected '{op}' but found {Describe(t)}", t.Pos);
        }
    }

    private string ExpectName()
    {
        var t = Next();
        if (t.Kind != TokenKind.Name)
        {
            throw Error($"expected a name but found {Describe(t)}", t.Pos);
        }

        return t.Value;
    }

    private void ExpectBlockEnd()
    {
        var t = Next();
        if (t.Kind != TokenKind.BlockEnd)
        {
            throw Error($"expected '%}}' but found {Describe(t)}", t.Pos);
        }
    }

    private static string Describe(JinjaToken t) => t.Kind switch
    {
        TokenKind.End => "the end of the template",
        TokenKind.BlockEnd => "'%}'",
        TokenKind.VariableEnd => "'}}'",
        TokenKind.String => $"string '{t.Value}'",
        TokenKind.Text => "template text",
        _ => $"'{t.Value}'",
    };

    /// <summary>Parses nodes until a block tag named in <paramref name="terminators"/>; returns which one.
    /// The terminator's name has been consumed (its arguments and '%}' have not).</summary>
    private (List<Node> Nodes, string? Terminator) ParseBody(string? opener, int openerPos, string[] terminators)
    {
        if (opener is null)
        {
            return ParseBodyCore(opener, openerPos, terminators);
        }

        if (_open.Count >= MaxNesting)
        {
            throw Error($"blocks nested more than {MaxNesting} deep", openerPos);
        }

        _open.Push((opener, openerPos, terminators[^1]));
        try
        {
            return ParseBodyCore(opener, openerPos, terminators);
        }
        finally
        {
            _open.Pop();
        }
    }

    private (List<Node> Nodes, string? Terminator) ParseBodyCore(string? opener, int openerPos, string[] terminators)
    {
        var nodes = new List<Node>();
        while (true)
        {
            var t = Peek();
            switch (t.Kind)
            {
                case TokenKind.End:
                    if (opener is not null)
                    {
                        throw Error($"unclosed '{{% {opener} %}}' (no '{{% {terminators[^1]} %}}' before the end of the template)", openerPos);
                    }

                    return (nodes, null);
                case TokenKind.Text:
                    Next();
                    nodes.Add(new TextNode(t.Value, t.Pos));
                    break;
                case TokenKind.VariableStart:
                    {
                        Next();
                        var e = ParseExpr();
                        var end = Next();
                        if (end.Kind != TokenKind.VariableEnd)
                        {
                            throw Error($"expected '}}}}' but found {Describe(end)}", end.Pos);
                        }

                        nodes.Add(new OutputNode(e, t.Pos));
                        break;
                    }

                case TokenKind.BlockStart:
                    {
                        _blockStart = Next().Pos;
                        var nameTok = Next();
                        if (nameTok.Kind != TokenKind.Name)
                        {
                            throw Error($"expected a tag name after '{{%' but found {Describe(nameTok)}", nameTok.Pos);
                        }

                        if (terminators.Contains(nameTok.Value))
                        {
                            return (nodes, nameTok.Value);
                        }

                        nodes.Add(ParseStatement(nameTok with { Pos = _blockStart }));
                        break;
                    }

                default:
                    throw Error($"unexpected {Describe(t)}", t.Pos);
            }
        }
    }

    private Node ParseStatement(JinjaToken tag)
    {
        switch (tag.Value)
        {
            case "for":
                return ParseFor(tag.Pos);
            case "if":
                return ParseIf(tag.Pos);
            case "set":
                return ParseSet(tag.Pos);
            case "macro":
                return ParseMacro(tag.Pos);
            case "break":
                ExpectBlockEnd();
                return new BreakNode(tag.Pos);
            case "continue":
                ExpectBlockEnd();
                return new ContinueNode(tag.Pos);
            case "generation":
                {
                    // Hugging Face's {% generation %} marks assistant text for masks; it renders its body unchanged.
                    ExpectBlockEnd();
                    var (body, _) = ParseBody("generation", tag.Pos, ["endgeneration"]);
                    ExpectBlockEnd();
                    return new IfNode([(new LiteralExpr(true, tag.Pos), body)], [], tag.Pos);
                }

            case "endfor" or "endif" or "endset" or "endmacro" or "else" or "elif" or "endgeneration":
                if (_open.TryPeek(out var inner))
                {
                    throw Error($"unclosed '{{% {inner.Opener} %}}' (opened at {Where(inner.Pos)}): found '{{% {tag.Value} %}}' where '{{% {inner.Closer} %}}' was expected", tag.Pos);
                }

                throw Error($"'{{% {tag.Value} %}}' without a matching opening tag", tag.Pos);
            default:
                throw Error($"unsupported tag '{{% {tag.Value} %}}' (supported: for, if/elif/else, set, macro, break, continue, generation)", tag.Pos);
        }
    }

    private ForNode ParseFor(int pos)
    {
        var targets = new List<string> { ExpectName() };
        while (IsOp(","))
        {
            Next();
            targets.Add(ExpectName());
        }

        if (!IsName("in"))
        {
            throw Error($"expected 'in' in the for loop but found {Describe(Peek())}", Peek().Pos);
        }

        Next();
        var iter = ParseExpr(allowCond: false);
        Expr? filter = null;
        if (IsName("if"))
        {
            Next();
            filter = ParseExpr(allowCond: false);
        }

        if (IsName("recursive"))
        {
            throw Error("'recursive' for loops are not supported", Peek().Pos);
        }

        ExpectBlockEnd();
        var (body, term) = ParseBody("for", pos, ["else", "endfor"]);
        IReadOnlyList<Node> elseBody = [];
        ExpectBlockEnd();
        if (term == "else")
        {
            (elseBody, _) = ParseBody("for", pos, ["endfor"]);
            ExpectBlockEnd();
        }

        return new ForNode(targets, iter, filter, body, elseBody, pos);
    }

    private IfNode ParseIf(int pos)
    {
        var branches = new List<(Expr, IReadOnlyList<Node>)>();
        var cond = ParseExpr();
        ExpectBlockEnd();
        while (true)
        {
            var (body, term) = ParseBody("if", pos, ["elif", "else", "endif"]);
            branches.Add((cond, body));
            if (term == "elif")
            {
                cond = ParseExpr();
                ExpectBlockEnd();
                continue;
            }

            ExpectBlockEnd();
            if (term == "else")
            {
                var (elseBody, _) = ParseBody("if", pos, ["endif"]);
                ExpectBlockEnd();
                return new IfNode(branches, elseBody, pos);
            }

            return new IfNode(branches, [], pos);
        }
    }

    private SetNode ParseSet(int pos)
    {
        var targets = new List<string> { ExpectName() };
        string? attribute = null;
        if (IsOp("."))
        {
            Next();
            attribute = ExpectName();
        }

        while (IsOp(","))
        {
            Next();
            targets.Add(ExpectName());
        }

        if (Peek().Kind == TokenKind.BlockEnd && attribute is null && targets.Count == 1)
        {
            Next();
            var (body, _) = ParseBody("set", pos, ["endset"]);
            ExpectBlockEnd();
            return new SetNode(targets, null, null, body, pos);
        }

        ExpectOp("=");
        var value = ParseExpr();
        if (IsOp(","))
        {
            var items = new List<Expr> { value };
            while (IsOp(","))
            {
                Next();
                items.Add(ParseExpr());
            }

            value = new ListExpr(items, value.Pos);
        }

        ExpectBlockEnd();
        return new SetNode(targets, attribute, value, null, pos);
    }

    private MacroNode ParseMacro(int pos)
    {
        var name = ExpectName();
        ExpectOp("(");
        var parameters = new List<(string, Expr?)>();
        while (!IsOp(")"))
        {
            var p = ExpectName();
            Expr? def = null;
            if (IsOp("="))
            {
                Next();
                def = ParseExpr();
            }

            parameters.Add((p, def));
            if (!IsOp(","))
            {
                break;
            }

            Next();
        }

        ExpectOp(")");
        ExpectBlockEnd();
        var (body, _) = ParseBody("macro", pos, ["endmacro"]);
        ExpectBlockEnd();
        return new MacroNode(name, parameters, body, pos);
    }
}
