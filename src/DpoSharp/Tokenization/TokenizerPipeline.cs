using System.Text;
using System.Text.RegularExpressions;

namespace DpoSharp.Tokenization;

/// <summary>GPT-2's reversible byte ↔ printable-character mapping used by byte-level BPE vocabularies.</summary>
internal static class ByteLevel
{
    /// <summary>GPT-2's pre-tokenization pattern (contractions, letters, numbers, other, whitespace).</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public static readonly char[] ByteToChar = BuildByteToChar();

    public static readonly Dictionary<char, byte> CharToByte = BuildCharToByte();

    public static readonly Regex Gpt2Regex = new(Gpt2Pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);

    /// <summary>Maps the UTF-8 bytes of <paramref name="text"/> to the byte-level alphabet.</summary>
    public static string Encode(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var chars = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
        {
            chars[i] = ByteToChar[bytes[i]];
        }

        return new string(chars);
    }

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        var n = 0;
        for (var b = 0; b < 256; b++)
        {
            var printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + n++);
        }

        return map;
    }

    private static Dictionary<char, byte> BuildCharToByte()
    {
        var d = new Dictionary<char, byte>(256);
        var map = BuildByteToChar();
        for (var b = 0; b < 256; b++)
        {
            d[map[b]] = (byte)b;
        }

        return d;
    }
}

/// <summary>A text normalizer step (tokenizer.json <c>normalizer</c>).</summary>
internal abstract class TextNormalizer
{
    public abstract string Normalize(string text);
}

internal sealed class SequenceNormalizer(IReadOnlyList<TextNormalizer> steps) : TextNormalizer
{
    public override string Normalize(string text)
    {
        foreach (var s in steps)
        {
            text = s.Normalize(text);
        }

        return text;
    }
}

internal sealed class PrependNormalizer(string prefix) : TextNormalizer
{
    public override string Normalize(string text) => text.Length == 0 ? text : prefix + text;
}

internal sealed class ReplaceNormalizer(Regex pattern, string content) : TextNormalizer
{
    public override string Normalize(string text) => pattern.Replace(text, content.Replace("$", "$$", StringComparison.Ordinal));
}

internal sealed class UnicodeNormalizer(NormalizationForm form) : TextNormalizer
{
    public override string Normalize(string text) => text.IsNormalized(form) ? text : text.Normalize(form);
}

internal sealed class LowercaseNormalizer : TextNormalizer
{
    public override string Normalize(string text) => text.ToLowerInvariant();
}

/// <summary>A pre-tokenizer step: splits pieces of text into smaller pieces (tokenizer.json <c>pre_tokenizer</c>).</summary>
internal abstract class PreTokenizerStep
{
    /// <summary>Splits one piece. <paramref name="isFirst"/>: the piece starts the input (or follows no added token).</summary>
    public abstract void Split(string piece, bool isFirst, List<string> output);
}

internal sealed class SequencePreTokenizer(IReadOnlyList<PreTokenizerStep> steps) : PreTokenizerStep
{
    public override void Split(string piece, bool isFirst, List<string> output)
    {
        var current = new List<string> { piece };
        var nextPieces = new List<string>();
        for (var s = 0; s < steps.Count; s++)
        {
            nextPieces.Clear();
            for (var i = 0; i < current.Count; i++)
            {
                steps[s].Split(current[i], isFirst && i == 0, nextPieces);
            }

            (current, nextPieces) = (nextPieces, current);
        }

        output.AddRange(current);
    }
}

/// <summary>Byte-level: optional regex split (GPT-2 pattern), optional prefix space, then bytes → characters.</summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizerStep
{
    public override void Split(string piece, bool isFirst, List<string> output)
    {
        if (addPrefixSpace && piece.Length > 0 && piece[0] != ' ')
        {
            piece = " " + piece;
        }

        if (!useRegex)
        {
            output.Add(ByteLevel.Encode(piece));
            return;
        }

        foreach (Match m in ByteLevel.Gpt2Regex.Matches(piece))
        {
            output.Add(ByteLevel.Encode(m.Value));
        }
    }
}

/// <summary>Split on a regex or string. Behaviour: isolated, removed, merged_with_previous, merged_with_next, contiguous.</summary>
internal sealed class SplitPreTokenizer(Regex pattern, string behavior, bool invert) : PreTokenizerStep
{
    public override void Split(string piece, bool isFirst, List<string> output)
    {
        var spans = Spans(piece);
        switch (behavior)
        {
            case "isolated":
                foreach (var s in spans)
                {
                    output.Add(piece[s.Start..s.End]);
                }

                break;
            case "removed":
                foreach (var s in spans.Where(s => !s.IsMatch))
                {
                    output.Add(piece[s.Start..s.End]);
                }

                break;
            case "merged_with_previous":
                MergedWithPrevious(piece, spans, output);
                break;
            case "merged_with_next":
                MergedWithNext(piece, spans, output);
                break;
            case "contiguous":
                Contiguous(piece, spans, output);
                break;
            default:
                throw new DpoSharpException($"tokenizer.json: Split pre-tokenizer behavior '{behavior}' is not supported (supported: isolated, removed, merged_with_previous, merged_with_next, contiguous).");
        }
    }

    private static void MergedWithPrevious(string piece, List<(int Start, int End, bool IsMatch)> spans, List<string> output)
    {
        var start = 0;
        foreach (var s in spans)
        {
            if (s.IsMatch)
            {
                output.Add(piece[start..s.End]);
                start = s.End;
            }
        }

        if (start < piece.Length)
        {
            output.Add(piece[start..]);
        }
    }

    private static void MergedWithNext(string piece, List<(int Start, int End, bool IsMatch)> spans, List<string> output)
    {
        var start = 0;
        foreach (var s in spans)
        {
            if (s.IsMatch && s.Start > start)
            {
                output.Add(piece[start..s.Start]);
                start = s.Start;
            }
        }

        if (start < piece.Length)
        {
            output.Add(piece[start..]);
        }
    }

    private static void Contiguous(string piece, List<(int Start, int End, bool IsMatch)> spans, List<string> output)
    {
        var i = 0;
        while (i < spans.Count)
        {
            var j = i;
            while (j + 1 < spans.Count && spans[j + 1].IsMatch == spans[i].IsMatch)
            {
                j++;
            }

            output.Add(piece[spans[i].Start..spans[j].End]);
            i = j + 1;
        }
    }

    /// <summary>(start, end, isMatch) spans covering the whole piece (matches flagged false when inverted).</summary>
    private List<(int Start, int End, bool IsMatch)> Spans(string piece)
    {
        var spans = new List<(int Start, int End, bool IsMatch)>();
        var pos = 0;
        foreach (Match m in pattern.Matches(piece))
        {
            if (m.Length == 0)
            {
                continue;
            }

            if (m.Index > pos)
            {
                spans.Add((pos, m.Index, false));
            }

            spans.Add((m.Index, m.Index + m.Length, true));
            pos = m.Index + m.Length;
        }

        if (pos < piece.Length)
        {
            spans.Add((pos, piece.Length, false));
        }

        if (invert)
        {
            for (var i = 0; i < spans.Count; i++)
            {
                spans[i] = (spans[i].Start, spans[i].End, !spans[i].IsMatch);
            }
        }

        return spans;
    }
}

/// <summary>SentencePiece's metaspace: spaces → ▁, optional leading ▁, optional split before each ▁.</summary>
internal sealed class MetaspacePreTokenizer(char replacement, string prependScheme, bool split) : PreTokenizerStep
{
    public override void Split(string piece, bool isFirst, List<string> output)
    {
        var s = piece.Replace(' ', replacement);
        if (s.Length > 0 && s[0] != replacement && (prependScheme == "always" || (prependScheme == "first" && isFirst)))
        {
            s = replacement + s;
        }

        if (!split)
        {
            output.Add(s);
            return;
        }

        var start = 0;
        for (var i = 1; i < s.Length; i++)
        {
            if (s[i] == replacement)
            {
                output.Add(s[start..i]);
                start = i;
            }
        }

        if (start < s.Length)
        {
            output.Add(s[start..]);
        }
    }
}

/// <summary>Digits: isolates digits (each one, or runs of them).</summary>
internal sealed class DigitsPreTokenizer(bool individual) : PreTokenizerStep
{
    private static readonly Regex Individual = new(@"\p{N}", RegexOptions.Compiled);
    private static readonly Regex Runs = new(@"\p{N}+", RegexOptions.Compiled);

    public override void Split(string piece, bool isFirst, List<string> output) =>
        new SplitPreTokenizer(individual ? Individual : Runs, "isolated", false).Split(piece, isFirst, output);
}

/// <summary>Whitespace-split: <c>\w+|[^\w\s]+</c>.</summary>
internal sealed class WhitespacePreTokenizer : PreTokenizerStep
{
    private static readonly Regex Pattern = new(@"\w+|[^\w\s]+", RegexOptions.Compiled);

    public override void Split(string piece, bool isFirst, List<string> output)
    {
        foreach (Match m in Pattern.Matches(piece))
        {
            output.Add(m.Value);
        }
    }
}

/// <summary>
/// Splits a SentencePiece-normalized text before every run of ▁ that follows another character. Exact for BPE
/// when no vocabulary entry has ▁ after a non-▁ character (checked at load), and lets words be cached.
/// </summary>
internal sealed class MetaspaceBoundarySplitter(char replacement) : PreTokenizerStep
{
    public override void Split(string piece, bool isFirst, List<string> output)
    {
        var start = 0;
        for (var i = 1; i < piece.Length; i++)
        {
            if (piece[i] == replacement && piece[i - 1] != replacement)
            {
                output.Add(piece[start..i]);
                start = i;
            }
        }

        if (start < piece.Length)
        {
            output.Add(piece[start..]);
        }
    }
}

/// <summary>A decoder step over token strings (tokenizer.json <c>decoder</c>), with Hugging Face's semantics.</summary>
internal abstract class TokenDecoder
{
    public abstract List<string> Decode(List<string> tokens);
}

internal sealed class SequenceDecoder(IReadOnlyList<TokenDecoder> steps) : TokenDecoder
{
    public override List<string> Decode(List<string> tokens)
    {
        foreach (var s in steps)
        {
            tokens = s.Decode(tokens);
        }

        return tokens;
    }
}

internal sealed class ByteLevelDecoder : TokenDecoder
{
    public override List<string> Decode(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (var t in tokens)
        {
            var ok = true;
            foreach (var c in t)
            {
                if (!ByteLevel.CharToByte.ContainsKey(c))
                {
                    ok = false;
                    break;
                }
            }

            if (ok)
            {
                foreach (var c in t)
                {
                    bytes.Add(ByteLevel.CharToByte[c]);
                }
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(t));
            }
        }

        return [Encoding.UTF8.GetString(bytes.ToArray())];
    }
}

internal sealed class ReplaceDecoder(string pattern, string content) : TokenDecoder
{
    public override List<string> Decode(List<string> tokens) => tokens.Select(t => t.Replace(pattern, content, StringComparison.Ordinal)).ToList();
}

internal sealed class ByteFallbackDecoder : TokenDecoder
{
    public override List<string> Decode(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var pending = new List<byte>();
        void Flush()
        {
            if (pending.Count == 0)
            {
                return;
            }

            try
            {
                result.Add(new UTF8Encoding(false, true).GetString(pending.ToArray()));
            }
            catch (DecoderFallbackException)
            {
                result.AddRange(Enumerable.Repeat("\uFFFD", pending.Count));
            }

            pending.Clear();
        }

        foreach (var t in tokens)
        {
            if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>'
                && byte.TryParse(t.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out var b))
            {
                pending.Add(b);
            }
            else
            {
                Flush();
                result.Add(t);
            }
        }

        Flush();
        return result;
    }
}

internal sealed class FuseDecoder : TokenDecoder
{
    public override List<string> Decode(List<string> tokens) => [string.Concat(tokens)];
}

internal sealed class StripDecoder(char content, int start, int stop) : TokenDecoder
{
    public override List<string> Decode(List<string> tokens) => tokens.Select(t =>
    {
        var s = 0;
        while (s < start && s < t.Length && t[s] == content)
        {
            s++;
        }

        var e = t.Length;
        while (t.Length - e < stop && e > s && t[e - 1] == content)
        {
            e--;
        }

        return t[s..e];
    }).ToList();
}

internal sealed class MetaspaceDecoder(char replacement, bool stripFirst) : TokenDecoder
{
    public override List<string> Decode(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i].Replace(replacement, ' ');
            if (i == 0 && stripFirst && t.StartsWith(' '))
            {
                t = t[1..];
            }

            result.Add(t);
        }

        return result;
    }
}

/// <summary>No decoder in tokenizer.json: tokens joined by spaces (Hugging Face's fallback).</summary>
internal sealed class JoinDecoder : TokenDecoder
{
    public override List<string> Decode(List<string> tokens) => [string.Join(' ', tokens)];
}
