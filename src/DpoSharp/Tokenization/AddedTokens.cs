namespace DpoSharp.Tokenization;

/// <summary>A token matched atomically in text before BPE runs (special tokens, and added tokens such as
/// Phi-2's whitespace runs), with Hugging Face's <c>AddedToken</c> flags.</summary>
/// <param name="Id">Token id.</param>
/// <param name="Content">Exact text of the token.</param>
/// <param name="Special">Special tokens are dropped by <c>Decode(skipSpecialTokens: true)</c>.</param>
/// <param name="LStrip">A match also swallows the whitespace on its left.</param>
/// <param name="RStrip">A match also swallows the whitespace on its right.</param>
/// <param name="SingleWord">Only match when not inside a word.</param>
public sealed record AddedToken(int Id, string Content, bool Special, bool LStrip = false, bool RStrip = false, bool SingleWord = false);

/// <summary>Splits text on added tokens: leftmost match wins, and the longest token at that position.</summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        _byFirstChar = tokens.Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    public bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>Splits <paramref name="text"/> into (text piece, null) and (matched text, token) parts, in order.
    /// Text pieces carry their start offset.</summary>
    public List<(int Start, string Text, AddedToken? Token)> Split(string text)
    {
        var parts = new List<(int, string, AddedToken?)>();
        var pieceStart = 0;
        var i = 0;
        while (i < text.Length)
        {
            var match = _byFirstChar.TryGetValue(text[i], out var candidates) ? FindAt(text, i, candidates) : null;
            if (match is null)
            {
                i++;
                continue;
            }

            var start = i;
            var end = i + match.Content.Length;
            if (match.LStrip)
            {
                while (start > pieceStart && char.IsWhiteSpace(text[start - 1]))
                {
                    start--;
                }
            }

            if (match.RStrip)
            {
                while (end < text.Length && char.IsWhiteSpace(text[end]))
                {
                    end++;
                }
            }

            if (start > pieceStart)
            {
                parts.Add((pieceStart, text[pieceStart..start], null));
            }

            parts.Add((start, text[start..end], match));
            pieceStart = end;
            i = end;
        }

        if (pieceStart < text.Length)
        {
            parts.Add((pieceStart, text[pieceStart..], null));
        }

        return parts;
    }

    private static AddedToken? FindAt(string text, int i, AddedToken[] candidates)
    {
        foreach (var t in candidates)
        {
            if (string.CompareOrdinal(text, i, t.Content, 0, t.Content.Length) != 0 || i + t.Content.Length > text.Length)
            {
                continue;
            }

            if (t.SingleWord)
            {
                var end = i + t.Content.Length;
                var leftOk = i == 0 || !IsWordChar(text[i - 1]) || !IsWordChar(t.Content[0]);
                var rightOk = end == text.Length || !IsWordChar(text[end]) || !IsWordChar(t.Content[^1]);
                if (!leftOk || !rightOk)
                {
                    continue;
                }
            }

            return t;
        }

        return null;
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
}
