using System.Globalization;
using System.Text;

namespace DpoSharp.Tokenization.ChatTemplates;

/// <summary>Kinds of template tokens.</summary>
internal enum TokenKind
{
    Text,
    VariableStart,
    VariableEnd,
    BlockStart,
    BlockEnd,
    Name,
    String,
    Integer,
    Float,
    Operator,
    End,
}

/// <summary>One token with its offset in the template (for error messages).</summary>
internal readonly record struct JinjaToken(TokenKind Kind, string Value, int Pos);

/// <summary>
/// Splits a template into text and tag tokens (applying <c>{%-</c>/<c>-%}</c> whitespace control and
/// Hugging Face's <c>trim_blocks</c>/<c>lstrip_blocks</c>), then tokenizes the inside of each tag.
/// </summary>
internal sealed class JinjaLexer
{
    private static readonly string[] Operators =
        ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ".", ",", ":", "|"];

    private readonly string _src;

    private JinjaLexer(string src) => _src = src;

    public static List<JinjaToken> Tokenize(string template) => new JinjaLexer(template).Run();

    /// <summary>Line and column (1-based) of an offset.</summary>
    public static string Where(string src, int pos)
    {
        pos = Math.Clamp(pos, 0, src.Length);
        var line = 1;
        var col = 1;
        for (var i = 0; i < pos; i++)
        {
            if (src[i] == '\n')
            {
                line++;
                col = 1;
            }
            else
            {
                col++;
            }
        }

        return $"line {line}, column {col}";
    }

    private List<JinjaToken> Run()
    {
        var segs = ReadSegments();

        // Pass 2: whitespace control on text segments.
        var tokens = new List<JinjaToken>();
        for (var i = 0; i < segs.Count; i++)
        {
            var s = segs[i];
            if (s.Kind != 'T')
            {
                if (s.Kind == '#')
                {
                    continue;
                }

                tokens.Add(new JinjaToken(s.Kind == '{' ? TokenKind.VariableStart : TokenKind.BlockStart, string.Empty, s.Start));
                TokenizeInner(s.InnerStart, s.InnerEnd, tokens);
                tokens.Add(new JinjaToken(s.Kind == '{' ? TokenKind.VariableEnd : TokenKind.BlockEnd, string.Empty, s.InnerEnd));
                continue;
            }

            var text = ControlWhitespace(s, i > 0 ? segs[i - 1] : null, i + 1 < segs.Count ? segs[i + 1] : null);
            if (text.Length > 0)
            {
                tokens.Add(new JinjaToken(TokenKind.Text, text, s.Start));
            }
        }

        tokens.Add(new JinjaToken(TokenKind.End, string.Empty, _src.Length));
        return tokens;
    }

    /// <summary>Pass 1: raw segments (text, and tags with their whitespace-control markers).</summary>
    private List<Segment> ReadSegments()
    {
        var segs = new List<Segment>();
        var pos = 0;
        while (pos < _src.Length)
        {
            var open = FindOpen(pos);
            if (open < 0)
            {
                segs.Add(new Segment { Kind = 'T', Start = pos, End = _src.Length });
                break;
            }

            if (open > pos)
            {
                segs.Add(new Segment { Kind = 'T', Start = pos, End = open });
            }

            var kind = _src[open + 1]; // '{', '%' or '#'
            var inner = open + 2;
            var seg = new Segment { Kind = kind, Start = open };
            if (inner < _src.Length && (_src[inner] == '-' || _src[inner] == '+'))
            {
                seg.LeftStrip = _src[inner] == '-';
                seg.LeftKeep = _src[inner] == '+';
                inner++;
            }

            var close = kind == '#' ? _src.IndexOf("#}", inner, StringComparison.Ordinal) : FindClose(inner, kind == '{' ? '}' : '%');
            if (close < 0)
            {
                var what = kind == '{' ? "{{ … }}" : kind == '%' ? "{% … %}" : "{# … #}";
                throw new DpoSharpException($"Chat template: unclosed {what} tag at {Where(_src, open)}.");
            }

            var innerEnd = close;
            if (innerEnd > inner && (_src[innerEnd - 1] == '-' || _src[innerEnd - 1] == '+'))
            {
                seg.RightStrip = _src[innerEnd - 1] == '-';
                seg.RightKeep = _src[innerEnd - 1] == '+';
                innerEnd--;
            }

            seg.InnerStart = inner;
            seg.InnerEnd = innerEnd;
            seg.End = close + 2;
            segs.Add(seg);
            pos = seg.End;
        }

        return segs;
    }

    /// <summary>The text of text segment <paramref name="s"/> after the neighbouring tags' whitespace control
    /// (<c>-</c>/<c>+</c> markers, <c>lstrip_blocks</c>, <c>trim_blocks</c>).</summary>
    private string ControlWhitespace(Segment s, Segment? prev, Segment? next)
    {
        var text = _src[s.Start..s.End];
        if (next is not null)
        {
            if (next.LeftStrip)
            {
                text = text.TrimEnd();
            }
            else if (next.Kind is '%' or '#' && !next.LeftKeep)
            {
                // lstrip_blocks: spaces/tabs between the line start and a block tag go.
                var j = text.Length;
                while (j > 0 && (text[j - 1] == ' ' || text[j - 1] == '\t'))
                {
                    j--;
                }

                if (j < text.Length && ((j > 0 && text[j - 1] == '\n') || (j == 0 && s.Start == 0)))
                {
                    text = text[..j];
                }
            }
        }

        if (prev is not null)
        {
            if (prev.RightStrip)
            {
                text = text.TrimStart();
            }
            else if (prev.Kind is '%' or '#' && !prev.RightKeep)
            {
                // trim_blocks: the first newline after a block tag goes.
                if (text.StartsWith("\r\n", StringComparison.Ordinal))
                {
                    text = text[2..];
                }
                else if (text.StartsWith('\n'))
                {
                    text = text[1..];
                }
            }
        }

        return text;
    }

    private int FindOpen(int from)
    {
        for (var i = from; i + 1 < _src.Length; i++)
        {
            if (_src[i] == '{' && (_src[i + 1] == '{' || _src[i + 1] == '%' || _src[i + 1] == '#'))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Finds <c>}}</c> or <c>%}</c>, skipping string literals and nested dict braces.</summary>
    private int FindClose(int from, char first)
    {
        var depth = 0;
        for (var i = from; i < _src.Length; i++)
        {
            var c = _src[i];
            if (c is '\'' or '"')
            {
                i = SkipString(i);
                continue;
            }

            if (c == '{')
            {
                depth++;
            }
            else if (c == first && depth == 0 && i + 1 < _src.Length && _src[i + 1] == '}')
            {
                return i;
            }
            else if (c == '}' && depth > 0)
            {
                depth--;
            }
        }

        return -1;
    }

    private int SkipString(int start)
    {
        var q = _src[start];
        for (var i = start + 1; i < _src.Length; i++)
        {
            if (_src[i] == '\\')
            {
                i++;
            }
            else if (_src[i] == q)
            {
                return i;
            }
        }

        throw new DpoSharpException($"Chat template: unterminated string literal at {Where(_src, start)}.");
    }

    private void TokenizeInner(int start, int end, List<JinjaToken> tokens)
    {
        var i = start;
        while (i < end)
        {
            var c = _src[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
                continue;
            }

            if (char.IsLetter(c) || c == '_')
            {
                var j = i + 1;
                while (j < end && (char.IsLetterOrDigit(_src[j]) || _src[j] == '_'))
                {
                    j++;
                }

                tokens.Add(new JinjaToken(TokenKind.Name, _src[i..j], i));
                i = j;
                continue;
            }

            if (char.IsDigit(c))
            {
                var (j, isFloat) = ScanNumber(i, end);
                tokens.Add(new JinjaToken(isFloat ? TokenKind.Float : TokenKind.Integer, _src[i..j].Replace("_", string.Empty, StringComparison.Ordinal), i));
                i = j;
                continue;
            }

            if (c is '\'' or '"')
            {
                var close = SkipString(i);
                tokens.Add(new JinjaToken(TokenKind.String, Unescape(_src, i + 1, close), i));
                i = close + 1;
                continue;
            }

            var op = Operators.FirstOrDefault(o => string.CompareOrdinal(_src, i, o, 0, o.Length) == 0 && i + o.Length <= end);
            if (op is null)
            {
                throw new DpoSharpException($"Chat template: unexpected character '{c}' at {Where(_src, i)}.");
            }

            tokens.Add(new JinjaToken(TokenKind.Operator, op, i));
            i += op.Length;
        }
    }

    /// <summary>The end of the number literal at <paramref name="i"/> (digits with <c>_</c>, optional fraction and
    /// exponent), and whether it is a float.</summary>
    private (int End, bool IsFloat) ScanNumber(int i, int end)
    {
        var j = i;
        while (j < end && (char.IsDigit(_src[j]) || _src[j] == '_'))
        {
            j++;
        }

        var isFloat = false;
        if (j + 1 < end && _src[j] == '.' && char.IsDigit(_src[j + 1]))
        {
            isFloat = true;
            j++;
            while (j < end && char.IsDigit(_src[j]))
            {
                j++;
            }
        }

        if (j < end && (_src[j] == 'e' || _src[j] == 'E'))
        {
            var k = j + 1;
            if (k < end && (_src[k] == '+' || _src[k] == '-'))
            {
                k++;
            }

            if (k < end && char.IsDigit(_src[k]))
            {
                isFloat = true;
                j = k;
                while (j < end && char.IsDigit(_src[j]))
                {
                    j++;
                }
            }
        }

        return (j, isFloat);
    }

    private static string Unescape(string src, int start, int end)
    {
        var sb = new StringBuilder(end - start);
        for (var i = start; i < end; i++)
        {
            var c = src[i];
            if (c != '\\' || i + 1 >= end)
            {
                sb.Append(c);
                continue;
            }

            var e = src[++i];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case '0': sb.Append('\0'); break;
                case 'u' when i + 4 < end:
                    sb.Append((char)int.Parse(src.AsSpan(i + 1, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                    i += 4;
                    break;
                case 'x' when i + 2 < end:
                    sb.Append((char)int.Parse(src.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                    i += 2;
                    break;
                case '\n':
                    break;
                default:
                    sb.Append('\\').Append(e);
                    break;
            }
        }

        return sb.ToString();
    }

    private sealed class Segment
    {
        public char Kind { get; init; } // 'T' text, '{' variable, '%' block, '#' comment

        public int Start { get; init; }

        public int End { get; set; }

        public int InnerStart { get; set; }

        public int InnerEnd { get; set; }

        public bool LeftStrip { get; set; }

        public bool LeftKeep { get; set; }

        public bool RightStrip { get; set; }

        public bool RightKeep { get; set; }
    }
}
