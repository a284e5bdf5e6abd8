using System.Text;
using System.Text.RegularExpressions;
using DpoSharp.IO;

namespace DpoSharp.Tokenization.Readers;

/// <summary>The pipeline components of a <c>tokenizer.json</c>: normalizer, pre-tokenizer, decoder and post-processor.
/// Read with <see cref="JsonAt"/>: a missing field or one of the wrong type names the file and its JSON path
/// (<c>tokenizer.json: $.pre_tokenizer.pretokenizers[1].pattern: expected an object …</c>).</summary>
internal static class TokenizerJsonComponents
{
    /// <summary>Longest regex pattern accepted (published tokenizers use a few hundred characters).</summary>
    private const int MaxPatternLength = 10_000;

    /// <summary>Deepest nesting of Sequence components accepted (published tokenizers nest one level).</summary>
    private const int MaxSequenceDepth = 16;

    private static readonly string[] SplitBehaviors = ["isolated", "removed", "merged_with_previous", "merged_with_next", "contiguous"];

    public static TextNormalizer? ParseNormalizer(JsonAt n, int depth = 0)
    {
        if (n.IsNull)
        {
            return null;
        }

        CheckDepth(n, depth);
        var type = n.Object().Get("type").String();
        return type switch
        {
            "Sequence" => new SequenceNormalizer(n.Get("normalizers").Items().Select(x => ParseNormalizer(x, depth + 1)).OfType<TextNormalizer>().ToList()),
            "Prepend" => new PrependNormalizer(n.Get("prepend").String()),
            "Replace" => new ReplaceNormalizer(ParsePattern(n.Get("pattern")), n.Get("content").String()),
            "NFC" => new UnicodeNormalizer(NormalizationForm.FormC),
            "NFD" => new UnicodeNormalizer(NormalizationForm.FormD),
            "NFKC" => new UnicodeNormalizer(NormalizationForm.FormKC),
            "NFKD" => new UnicodeNormalizer(NormalizationForm.FormKD),
            "Lowercase" => new LowercaseNormalizer(),
            _ => throw n.Error($"normalizer '{type}' is not supported (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase)."),
        };
    }

    public static PreTokenizerStep? ParsePreTokenizer(JsonAt p, int depth = 0)
    {
        if (p.IsNull)
        {
            return null;
        }

        CheckDepth(p, depth);
        var type = p.Object().Get("type").String();
        return type switch
        {
            "Sequence" => new SequencePreTokenizer(p.Get("pretokenizers").Items().Select(x => ParsePreTokenizer(x, depth + 1)).OfType<PreTokenizerStep>().ToList()),
            "ByteLevel" => new ByteLevelPreTokenizer(p.Bool("add_prefix_space", false), p.Bool("use_regex", true)),
            "Split" => new SplitPreTokenizer(ParsePattern(p.Get("pattern")), SplitBehavior(p), p.Bool("invert", false)),
            "Metaspace" => new MetaspacePreTokenizer(ReplacementChar(p), PrependScheme(p), p.Bool("split", true)),
            "Digits" => new DigitsPreTokenizer(p.Bool("individual_digits", false)),
            "Whitespace" => new WhitespacePreTokenizer(),
            _ => throw p.Error($"pre-tokenizer '{type}' is not supported (supported: Sequence, ByteLevel, Split, Metaspace, Digits, Whitespace)."),
        };
    }

    public static TokenDecoder? ParseDecoder(JsonAt d, int depth = 0)
    {
        if (d.IsNull)
        {
            return null;
        }

        CheckDepth(d, depth);
        var type = d.Object().Get("type").String();
        return type switch
        {
            "Sequence" => new SequenceDecoder(d.Get("decoders").Items().Select(x => ParseDecoder(x, depth + 1)).OfType<TokenDecoder>().ToList()),
            "ByteLevel" => new ByteLevelDecoder(),
            "Replace" => ReplaceDecoder(d),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => StripDecoder(d),
            "Metaspace" => new MetaspaceDecoder(ReplacementChar(d), PrependScheme(d) != "never"),
            _ => throw d.Error($"decoder '{type}' is not supported (supported: Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace)."),
        };
    }

    private static ReplaceDecoder ReplaceDecoder(JsonAt d)
    {
        var pattern = d.Get("pattern").Object();
        if (pattern.Find("String") is not { } s)
        {
            throw pattern.Error("a Replace decoder with a regex pattern is not supported; expected {\"String\": …}.");
        }

        var text = s.String();
        if (text.Length == 0)
        {
            throw s.Error("the pattern is empty; a Replace decoder needs the text to replace.");
        }

        return new ReplaceDecoder(text, d.Get("content").String());
    }

    private static StripDecoder StripDecoder(JsonAt d)
    {
        var content = d.Get("content");
        var text = content.String();
        if (text.Length != 1)
        {
            throw content.Error($"expected one character, found {text.Length}.");
        }

        int Count(string name)
        {
            var n = d.Int32(name, 0);
            return n >= 0 ? n : throw d.Get(name).Error($"expected a count ≥ 0, found {n}.");
        }

        return new StripDecoder(text[0], Count("start"), Count("stop"));
    }

    private static string SplitBehavior(JsonAt p)
    {
        var behavior = p.String("behavior", "Isolated").ToLowerInvariant() switch
        {
            "mergedwithprevious" => "merged_with_previous",
            "mergedwithnext" => "merged_with_next",
            var x => x,
        };
        return SplitBehaviors.Contains(behavior)
            ? behavior
            : throw p.Get("behavior").Error($"Split behavior '{behavior}' is not supported (supported: Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous).");
    }

    private static char ReplacementChar(JsonAt e) => e.String("replacement", "▁") is { Length: > 0 } s ? s[0] : '▁';

    private static string PrependScheme(JsonAt e)
    {
        if (e.Find("prepend_scheme") is { } ps)
        {
            var scheme = ps.String();
            return scheme is "always" or "never" or "first" ? scheme : throw ps.Error($"prepend_scheme '{scheme}' is not one of always, never, first.");
        }

        return e.Bool("add_prefix_space", true) ? "always" : "never";
    }

    public static (int[] Prefix, int[] Suffix) ParsePostProcessor(JsonAt pp, Dictionary<string, int> vocab, List<AddedToken> added, int depth = 0)
    {
        if (pp.IsNull)
        {
            return ([], []);
        }

        CheckDepth(pp, depth);
        int Lookup(JsonAt where, string tok) => added.FirstOrDefault(a => a.Content == tok)?.Id
            ?? (vocab.TryGetValue(tok, out var i) ? i : throw where.Error($"post-processor token '{tok}' is not in the vocabulary."));

        switch (pp.Object().Get("type").String())
        {
            case "TemplateProcessing":
                {
                    var special = new Dictionary<string, int[]>(StringComparer.Ordinal);
                    if (pp.Find("special_tokens") is { } st)
                    {
                        foreach (var (name, s) in st.Members())
                        {
                            special[name] = s.Get("ids").Items().Select(x => TokenId(x)).ToArray();
                        }
                    }

                    var prefix = new List<int>();
                    var suffix = new List<int>();
                    var seenSequence = false;
                    foreach (var item in pp.Get("single").Items())
                    {
                        if (item.Object().Find("Sequence") is not null)
                        {
                            seenSequence = true;
                        }
                        else if (item.Find("SpecialToken") is { } tok)
                        {
                            var id = tok.Get("id");
                            var name = id.String();
                            var ids = special.TryGetValue(name, out var x) ? x : [Lookup(id, name)];
                            (seenSequence ? suffix : prefix).AddRange(ids);
                        }
                    }

                    return ([.. prefix], [.. suffix]);
                }

            case "RobertaProcessing":
            case "BertProcessing":
                {
                    var cls = pp.Get("cls").At(0);
                    var sep = pp.Get("sep").At(0);
                    return ([Lookup(cls, cls.String())], [Lookup(sep, sep.String())]);
                }

            case "Sequence":
                {
                    var prefix = new List<int>();
                    var suffix = new List<int>();
                    foreach (var p in pp.Get("processors").Items())
                    {
                        var (a, b) = ParsePostProcessor(p, vocab, added, depth + 1);
                        prefix.AddRange(a);
                        suffix.AddRange(b);
                    }

                    return ([.. prefix], [.. suffix]);
                }

            default:
                return ([], []); // ByteLevel (offsets only) and others add no tokens.
        }
    }

    /// <summary>A token id: an integer in 0..<see cref="ReaderSupport.MaxVocabId"/>.</summary>
    public static int TokenId(JsonAt e)
    {
        var id = e.Int32();
        return id is >= 0 and <= ReaderSupport.MaxVocabId ? id : throw e.Error($"{id} is not a token id (0..{ReaderSupport.MaxVocabId}).");
    }

    private static void CheckDepth(JsonAt e, int depth)
    {
        if (depth > MaxSequenceDepth)
        {
            throw e.Error($"Sequence components nested more than {MaxSequenceDepth} deep; is the file damaged?");
        }
    }

    private static Regex ParsePattern(JsonAt pattern)
    {
        pattern.Object();
        if (pattern.Find("String") is { } s)
        {
            return new Regex(Regex.Escape(s.String()), RegexOptions.CultureInvariant);
        }

        if (pattern.Find("Regex") is { } r)
        {
            var text = r.String();
            if (text.Length > MaxPatternLength)
            {
                throw r.Error($"a regex of {text.Length:N0} characters (at most {MaxPatternLength:N0}); is the file damaged?");
            }

            try
            {
                return new Regex(text, RegexOptions.Compiled | RegexOptions.CultureInvariant);
            }
            catch (ArgumentException e)
            {
                throw r.Error($"not a regular expression .NET can read ({e.Message}).");
            }
        }

        throw pattern.Error("expected {\"String\": …} or {\"Regex\": …}.");
    }
}
