namespace DpoSharp.Tokenization.ChatTemplates;

/// <summary>A template statement.</summary>
internal abstract record Node(int Pos);

internal sealed record TextNode(string Text, int Pos) : Node(Pos);

internal sealed record OutputNode(Expr Expr, int Pos) : Node(Pos);

internal sealed record ForNode(IReadOnlyList<string> Targets, Expr Iter, Expr? Filter, IReadOnlyList<Node> Body, IReadOnlyList<Node> Else, int Pos) : Node(Pos);

internal sealed record IfNode(IReadOnlyList<(Expr Cond, IReadOnlyList<Node> Body)> Branches, IReadOnlyList<Node> Else, int Pos) : Node(Pos);

/// <summary><c>{% set x = e %}</c>, <c>{% set ns.x = e %}</c>, <c>{% set a, b = e %}</c>, or a block set (Body).</summary>
internal sealed record SetNode(IReadOnlyList<string> Targets, string? Attribute, Expr? Value, IReadOnlyList<Node>? Body, int Pos) : Node(Pos);

internal sealed record MacroNode(string Name, IReadOnlyList<(string Name, Expr? Default)> Parameters, IReadOnlyList<Node> Body, int Pos) : Node(Pos);

internal sealed record BreakNode(int Pos) : Node(Pos);

internal sealed record ContinueNode(int Pos) : Node(Pos);

/// <summary>An expression.</summary>
internal abstract record Expr(int Pos);

internal sealed record LiteralExpr(object? Value, int Pos) : Expr(Pos);

internal sealed record NameExpr(string Name, int Pos) : Expr(Pos);

internal sealed record AttrExpr(Expr Target, string Name, int Pos) : Expr(Pos);

internal sealed record ItemExpr(Expr Target, Expr Key, int Pos) : Expr(Pos);

internal sealed record SliceExpr(Expr Target, Expr? Start, Expr? Stop, Expr? Step, int Pos) : Expr(Pos);

internal sealed record CallExpr(Expr Callee, IReadOnlyList<Expr> Args, IReadOnlyList<(string Name, Expr Value)> Kwargs, int Pos) : Expr(Pos);

internal sealed record FilterExpr(Expr Target, string Name, IReadOnlyList<Expr> Args, IReadOnlyList<(string Name, Expr Value)> Kwargs, int Pos) : Expr(Pos);

internal sealed record TestExpr(Expr Target, string Name, IReadOnlyList<Expr> Args, bool Negated, int Pos) : Expr(Pos);

internal sealed record UnaryExpr(string Op, Expr Operand, int Pos) : Expr(Pos);

internal sealed record BinaryExpr(string Op, Expr Left, Expr Right, int Pos) : Expr(Pos);

internal sealed record CompareExpr(Expr First, IReadOnlyList<(string Op, Expr Right)> Rest, int Pos) : Expr(Pos);

internal sealed record CondExpr(Expr Cond, Expr Then, Expr? Else, int Pos) : Expr(Pos);

internal sealed record ListExpr(IReadOnlyList<Expr> Items, int Pos) : Expr(Pos);

internal sealed record DictExpr(IReadOnlyList<(Expr Key, Expr Value)> Items, int Pos) : Expr(Pos);
