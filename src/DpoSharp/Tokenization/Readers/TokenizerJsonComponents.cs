using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using static DpoSharp.Tokenization.Readers.ReaderSupport;

namespace DpoSharp.Tokenization.Readers;

/// <summary>The pipeline components of a <c>tokenizer.json</c>: normalizer, pre-tokenizer, decoder and post-processor.</summary>
internal static class TokenizerJsonComponents
{
    public static TextNormalizer? ParseNormalizer(JsonElement n, string file)
    {
        if (n.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var type = n.GetProperty("type").GetString();
        return type switch
        {
            "Sequence" => new SequenceNormalizer(n.GetProperty("normalizers").EnumerateArray().Select(x => ParseNormalizer(x, file)).OfType<TextNormalizer>().ToList()),
            "Prepend" => new PrependNormalizer(n.GetProperty("prepend").GetString() ?? string.Empty),
            "Replace" => new ReplaceNormalizer(ParsePattern(n.GetProperty("pattern")), n.GetProperty("content").GetString() ?? string.Empty),
            "NFC" => new UnicodeNormalizer(NormalizationForm.FormC),
            "NFD" => new UnicodeNormalizer(NormalizationForm.FormD),
            "NFKC" => new UnicodeNormalizer(NormalizationForm.FormKC),
            "NFKD" => new UnicodeNormalizer(NormalizationForm.FormKD),
            "Lowercase" => new LowercaseNormalizer(),
            _ => throw new DpoSharpException($"{file}: normalizer '{type}' is not supported (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase)."),
        };
    }

    public static PreTokenizerStep? ParsePreTokenizer(JsonElement p, string file)
    {
        if (p.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var type = p.GetProperty("type").GetString();
        return type switch
        {
            "Sequence" => new SequencePreTokenizer(p.GetProperty("pretokenizers").EnumerateArray().Select(x => ParsePreTokenizer(x, file)).OfType<PreTokenizerStep>().ToList()),
            "ByteLevel" => new ByteLevelPreTokenizer(GetBool(p, "add_prefix_space") ?? false, GetBool(p, "use_regex") ?? true),
            "Split" => new SplitPreTokenizer(
                ParsePattern(p.GetProperty("pattern")),
                (p.TryGetProperty("behavior", out var b) ? b.GetString() ?? "Isolated" : "Isolated").ToLowerInvariant() switch
                {
                    "mergedwithprevious" => "merged_with_previous",
                    "mergedwithnext" => "merged_with_next",
                    var x => x,
                },
                GetBool(p, "invert") ?? false),
            "Metaspace" => new MetaspacePreTokenizer(
                ReplacementChar(p),
                PrependScheme(p),
                GetBool(p, "split") ?? true),
            "Digits" => new DigitsPreTokenizer(GetBool(p, "individual_digits") ?? false),
            "Whitespace" => new WhitespacePreTokenizer(),
            _ => throw new DpoSharpException($"{file}: pre-tokenizer '{type}' is not supported (supported: Sequence, ByteLevel, Split, Metaspace, Digits, Whitespace)."),
        };
    }

    public static TokenDecoder? ParseDecoder(JsonElement d, string file)
    {
        if (d.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var type = d.GetProperty("type").GetString();
        return type switch
        {
            "Sequence" => new SequenceDecoder(d.GetProperty("decoders").EnumerateArray().Select(x => ParseDecoder(x, file)).OfType<TokenDecoder>().ToList()),
            "ByteLevel" => new ByteLevelDecoder(),
            "Replace" => new ReplaceDecoder(d.GetProperty("pattern").TryGetProperty("String", out var s) ? s.GetString()! : throw new DpoSharpException($"{file}: Replace decoder with a regex pattern is not supported."), d.GetProperty("content").GetString() ?? string.Empty),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => new StripDecoder((d.GetProperty("content").GetString() ?? " ")[0], d.TryGetProperty("start", out var st) ? st.GetInt32() : 0, d.TryGetProperty("stop", out var sp) ? sp.GetInt32() : 0),
            "Metaspace" => new MetaspaceDecoder(ReplacementChar(d), PrependScheme(d) != "never"),
            _ => throw new DpoSharpException($"{file}: decoder '{type}' is not supported (supported: Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace)."),
        };
    }

    private static char ReplacementChar(JsonElement e) =>
        e.TryGetProperty("replacement", out var r) && r.GetString() is { Length: > 0 } s ? s[0] : '▁';

    private static string PrependScheme(JsonElement e)
    {
        if (e.TryGetProperty("prepend_scheme", out var ps) && ps.ValueKind == JsonValueKind.String)
        {
            return ps.GetString()!;
        }

        return (GetBool(e, "add_prefix_space") ?? true) ? "always" : "never";
    }

    public static (int[] Prefix, int[] Suffix) ParsePostProcessor(JsonElement pp, Dictionary<string, int> vocab, List<AddedToken> added, string file)
    {
        if (pp.ValueKind == JsonValueKind.Null)
        {
            return ([], []);
        }

        int Lookup(string tok) => added.FirstOrDefault(a => a.Content == tok)?.Id
            ?? (vocab.TryGetValue(tok, out var i) ? i : throw new DpoSharpException($"{file}: post-processor token '{tok}' is not in the vocabulary."));

        switch (pp.GetProperty("type").GetString())
        {
            case "TemplateProcessing":
                {
                    var special = new Dictionary<string, int[]>(StringComparer.Ordinal);
                    if (pp.TryGetProperty("special_tokens", out var st) && st.ValueKind == JsonValueKind.Object)
                    {
                        foreach (var s in st.EnumerateObject())
                        {
                            special[s.Name] = s.Value.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
                        }
                    }

                    var prefix = new List<int>();
                    var suffix = new List<int>();
                    var seenSequence = false;
                    foreach (var item in pp.GetProperty("single").EnumerateArray())
                    {
                        if (item.TryGetProperty("Sequence", out _))
                        {
                            seenSequence = true;
                        }
                        else if (item.TryGetProperty("SpecialToken", out var tok))
                        {
                            var name = tok.GetProperty("id").GetString()!;
                            var ids = special.TryGetValue(name, out var x) ? x : [Lookup(name)];
                            (seenSequence ? suffix : prefix).AddRange(ids);
                        }
                    }

                    return ([.. prefix], [.. suffix]);
                }

            case "RobertaProcessing":
            case "BertProcessing":
                return ([Lookup(pp.GetProperty("cls")[0].GetString()!)], [Lookup(pp.GetProperty("sep")[0].GetString()!)]);
            case "Sequence":
                {
                    var prefix = new List<int>();
                    var suffix = new List<int>();
                    foreach (var p in pp.GetProperty("processors").EnumerateArray())
                    {
                        var (a, b) = ParsePostProcessor(p, vocab, added, file);
                        prefix.AddRange(a);
                        suffix.AddRange(b);
                    }

                    return ([.. prefix], [.. suffix]);
                }

            default:
                return ([], []); // ByteLevel (offsets only) and others add no tokens.
        }
    }

    private static Regex ParsePattern(JsonElement pattern)
    {
        if (pattern.TryGetProperty("String", out var s))
        {
            return new Regex(Regex.Escape(s.GetString() ?? string.Empty), RegexOptions.CultureInvariant);
        }

        if (pattern.TryGetProperty("Regex", out var r))
        {
            return new Regex(r.GetString() ?? string.Empty, RegexOptions.Compiled | RegexOptions.CultureInvariant);
        }

        throw new DpoSharpException("tokenizer.json: a pattern is neither {\"String\": …} nor {\"Regex\": …}.");
    }
}
