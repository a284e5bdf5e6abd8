using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace DpoSharp.Tokenization;

/// <summary>Reads the tokenizer files of a Hugging Face model directory into <see cref="HfTokenizer.Parts"/>.</summary>
internal static class TokenizerLoader
{
    private static readonly string[] SpecialKeys =
        ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    private static readonly HashSet<string> LlamaLikeClasses = new(StringComparer.Ordinal)
    {
        "LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast",
    };

    public static HfTokenizer.Parts Load(string modelDir)
    {
        ArgumentNullException.ThrowIfNull(modelDir);
        if (!Directory.Exists(modelDir))
        {
            throw new DpoSharpException(File.Exists(modelDir)
                ? $"'{modelDir}' is a file; pass the model directory that holds tokenizer.json (or tokenizer.model, or encoder.json + vocab.bpe)."
                : $"Tokenizer directory '{modelDir}' does not exist.");
        }

        var config = ReadJsonObject(Path.Combine(modelDir, "tokenizer_config.json"));
        var specialMap = ReadJsonObject(Path.Combine(modelDir, "special_tokens_map.json"));
        try
        {
            return LoadCore(modelDir, config, specialMap);
        }
        finally
        {
            config?.Dispose();
            specialMap?.Dispose();
        }
    }

    private static HfTokenizer.Parts LoadCore(string dir, JsonDocument? config, JsonDocument? specialMap)
    {
        var cfg = config?.RootElement;
        var tokJson = Path.Combine(dir, "tokenizer.json");
        var specialStrings = ReadSpecialStrings(cfg, specialMap?.RootElement);
        var chatTemplate = ReadChatTemplate(dir, cfg);
        var tokenizerClass = cfg is JsonElement c && c.TryGetProperty("tokenizer_class", out var tc) && tc.ValueKind == JsonValueKind.String ? tc.GetString() : null;
        bool? addBos = GetBool(cfg, "add_bos_token");
        bool? addEos = GetBool(cfg, "add_eos_token");

        string source;
        BpeModel? bpe = null;
        Microsoft.ML.Tokenizers.SentencePieceTokenizer? spm = null;
        TextNormalizer? normalizer = null;
        PreTokenizerStep? preTokenizer = null;
        TokenDecoder decoder;
        IReadOnlyDictionary<string, int> vocab;
        var added = new List<AddedToken>();
        int[] prefix = [];
        int[] suffix = [];
        var usePostProcessorDefaults = true;

        if (File.Exists(tokJson))
        {
            source = tokJson;
            using var doc = ParseJson(tokJson);
            var root = doc.RootElement;
            if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            {
                throw new DpoSharpException($"{tokJson}: no \"model\" object; this is not a Hugging Face tokenizer.json.");
            }

            var type = model.TryGetProperty("type", out var t) ? t.GetString() : (model.TryGetProperty("merges", out _) ? "BPE" : null);
            if (type != "BPE")
            {
                throw new DpoSharpException($"{tokJson}: model type '{type ?? "(none)"}' is not supported; DpoSharp reads BPE tokenizers (GPT-2, Phi-2, Qwen2, Llama, Mistral).");
            }

            var v = ReadVocab(model.GetProperty("vocab"), tokJson);
            vocab = v;
            var merges = ReadMerges(model.GetProperty("merges"), tokJson);
            var byteFallback = GetBool(model, "byte_fallback") ?? false;
            bpe = new BpeModel(
                v,
                merges,
                model.TryGetProperty("unk_token", out var unk) && unk.ValueKind == JsonValueKind.String ? unk.GetString() : null,
                byteFallback,
                GetBool(model, "fuse_unk") ?? false,
                GetBool(model, "ignore_merges") ?? false,
                tokJson);
            if (model.TryGetProperty("continuing_subword_prefix", out var csp) && csp.ValueKind == JsonValueKind.String && csp.GetString()!.Length > 0)
            {
                throw new DpoSharpException($"{tokJson}: BPE with continuing_subword_prefix is not supported.");
            }

            if (root.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array)
            {
                foreach (var a in at.EnumerateArray())
                {
                    added.Add(new AddedToken(
                        a.GetProperty("id").GetInt32(),
                        a.GetProperty("content").GetString() ?? string.Empty,
                        GetBool(a, "special") ?? false,
                        GetBool(a, "lstrip") ?? false,
                        GetBool(a, "rstrip") ?? false,
                        GetBool(a, "single_word") ?? false));
                }
            }

            normalizer = root.TryGetProperty("normalizer", out var n) ? ParseNormalizer(n, tokJson) : null;
            preTokenizer = root.TryGetProperty("pre_tokenizer", out var pt) ? ParsePreTokenizer(pt, tokJson) : null;
            if (preTokenizer is null && byteFallback && IsMetaspaceSplitSafe(v))
            {
                // SentencePiece-style: the whole text is one word; split it where no merge can cross, for the cache.
                preTokenizer = new MetaspaceBoundarySplitter('▁');
            }

            decoder = root.TryGetProperty("decoder", out var d) ? ParseDecoder(d, tokJson) ?? new JoinDecoder() : new JoinDecoder();
            if (root.TryGetProperty("post_processor", out var pp))
            {
                (prefix, suffix) = ParsePostProcessor(pp, v, added, tokJson);
            }
        }
        else if (File.Exists(Path.Combine(dir, "vocab.json")) && File.Exists(Path.Combine(dir, "merges.txt")))
        {
            source = Path.Combine(dir, "vocab.json");
            (bpe, vocab) = LoadByteLevelFiles(source, Path.Combine(dir, "merges.txt"));
            preTokenizer = new ByteLevelPreTokenizer(GetBool(cfg, "add_prefix_space") ?? false, true);
            decoder = new ByteLevelDecoder();
            usePostProcessorDefaults = false;
        }
        else if (File.Exists(Path.Combine(dir, "encoder.json")) && File.Exists(Path.Combine(dir, "vocab.bpe")))
        {
            source = Path.Combine(dir, "encoder.json");
            (bpe, vocab) = LoadByteLevelFiles(source, Path.Combine(dir, "vocab.bpe"));
            preTokenizer = new ByteLevelPreTokenizer(GetBool(cfg, "add_prefix_space") ?? false, true);
            decoder = new ByteLevelDecoder();
            usePostProcessorDefaults = false;
            if (vocab.ContainsKey("<|endoftext|>"))
            {
                // GPT-2's tokenizer defaults: bos = eos = unk = <|endoftext|>.
                foreach (var k in new[] { "bos_token", "eos_token", "unk_token" })
                {
                    specialStrings.TryAdd(k, "<|endoftext|>");
                }
            }
        }
        else if (File.Exists(Path.Combine(dir, "tokenizer.model")))
        {
            source = Path.Combine(dir, "tokenizer.model");
            var sp = SentencePieceModel.Read(source);
            decoder = new SequenceDecoder([new ReplaceDecoder("▁", " "), new ByteFallbackDecoder(), new FuseDecoder(), new StripDecoder(' ', 1, 0)]);
            usePostProcessorDefaults = false;
            addBos ??= true;
            string? Piece(int id) => id >= 0 && id < sp.Pieces.Count ? sp.Pieces[id].Piece : null;
            if (sp.ModelType == 2)
            {
                (bpe, var v) = BuildSentencePieceBpe(sp, source);
                vocab = v;
                normalizer = new SentencePieceNormalizer(sp.AddDummyPrefix, sp.RemoveExtraWhitespaces, sp.EscapeWhitespaces);
                preTokenizer = IsMetaspaceSplitSafe(v) ? new MetaspaceBoundarySplitter('▁') : null;
                for (var id = 0; id < sp.Pieces.Count; id++)
                {
                    var (piece, _, type) = sp.Pieces[id];
                    if (type is SentencePieceModel.TypeControl or SentencePieceModel.TypeUnknown or SentencePieceModel.TypeUserDefined)
                    {
                        AddSpecial(added, piece, id, special: type != SentencePieceModel.TypeUserDefined);
                    }
                }
            }
            else
            {
                // Unigram and other SentencePiece models: Microsoft.ML.Tokenizers encodes them.
                try
                {
                    using var stream = File.OpenRead(source);
                    spm = Microsoft.ML.Tokenizers.SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false);
                }
                catch (Exception e) when (e is not DpoSharpException)
                {
                    throw new DpoSharpException($"{source}: SentencePiece model type {sp.ModelType} could not be loaded ({e.Message}).", e);
                }

                vocab = spm.Vocabulary;
                AddSpecial(added, spm.UnknownToken, spm.UnknownId, special: true);
                AddSpecial(added, spm.BeginningOfSentenceToken, spm.BeginningOfSentenceId, special: true);
                AddSpecial(added, spm.EndOfSentenceToken, spm.EndOfSentenceId, special: true);
            }

            foreach (var (key, id) in new[] { ("bos_token", sp.BosId), ("eos_token", sp.EosId), ("unk_token", sp.UnkId), ("pad_token", sp.PadId) })
            {
                if (Piece(id) is string piece)
                {
                    specialStrings.TryAdd(key, piece);
                }
            }
        }
        else
        {
            var present = Directory.EnumerateFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
            throw new DpoSharpException(
                $"No tokenizer files in '{dir}': expected tokenizer.json, or tokenizer.model, or vocab.json + merges.txt, or encoder.json + vocab.bpe. " +
                $"Files present: {(present.Count == 0 ? "none" : string.Join(", ", present))}.");
        }

        // Added tokens declared in tokenizer_config.json, and the special-token strings themselves.
        if (cfg is JsonElement cfgEl && cfgEl.TryGetProperty("added_tokens_decoder", out var atd) && atd.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in atd.EnumerateObject())
            {
                if (int.TryParse(p.Name, out var id) && p.Value.ValueKind == JsonValueKind.Object && !added.Any(a => a.Id == id))
                {
                    added.Add(new AddedToken(
                        id,
                        p.Value.GetProperty("content").GetString() ?? string.Empty,
                        GetBool(p.Value, "special") ?? false,
                        GetBool(p.Value, "lstrip") ?? false,
                        GetBool(p.Value, "rstrip") ?? false,
                        GetBool(p.Value, "single_word") ?? false));
                }
            }
        }

        foreach (var s in specialStrings.Values.Concat(ReadAdditionalSpecial(cfg, specialMap?.RootElement)))
        {
            if (!added.Any(a => a.Content == s) && vocab.TryGetValue(s, out var id))
            {
                added.Add(new AddedToken(id, s, Special: true));
            }
        }

        if (!usePostProcessorDefaults || (tokenizerClass is not null && LlamaLikeClasses.Contains(tokenizerClass) && (addBos is not null || addEos is not null)))
        {
            // Llama-style tokenizers (and layouts without a post-processor): add_bos_token / add_eos_token decide.
            int? Id(string key) => specialStrings.TryGetValue(key, out var s) && (added.FirstOrDefault(a => a.Content == s)?.Id ?? (vocab.TryGetValue(s, out var i) ? i : null)) is int x ? x : null;
            var bosId = Id("bos_token");
            var eosId = Id("eos_token");
            var usePrefix = addBos ?? (prefix.Length > 0);
            var useSuffix = addEos ?? false;
            prefix = usePrefix && bosId is int b ? [b] : (addBos is null ? prefix : []);
            suffix = useSuffix && eosId is int e ? [e] : (addEos is null ? suffix : []);
        }

        return new HfTokenizer.Parts
        {
            Source = source,
            Bpe = bpe,
            SentencePiece = spm,
            Normalizer = normalizer,
            PreTokenizer = preTokenizer,
            Decoder = decoder,
            Vocab = vocab,
            Added = added,
            SpecialTokenStrings = specialStrings,
            PrefixIds = prefix,
            SuffixIds = suffix,
            ChatTemplate = chatTemplate,
        };
    }

    private static void AddSpecial(List<AddedToken> added, string? content, int id, bool special)
    {
        if (!string.IsNullOrEmpty(content) && id >= 0 && !added.Any(a => a.Id == id))
        {
            added.Add(new AddedToken(id, content, special));
        }
    }

    /// <summary>SentencePiece BPE as ranked merges: every split of a normal piece into two pieces is a merge whose
    /// rank is the piece's score order (equal scores share a rank, so the leftmost pair merges first).</summary>
    private static (BpeModel, Dictionary<string, int>) BuildSentencePieceBpe(SentencePieceModel sp, string source)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var id = 0; id < sp.Pieces.Count; id++)
        {
            vocab.TryAdd(sp.Pieces[id].Piece, id);
        }

        var normal = sp.Pieces.Select((p, id) => (p.Piece, p.Score, p.Type, Id: id)).Where(p => p.Type == SentencePieceModel.TypeNormal).ToList();
        var scoreRank = normal.Select(p => p.Score).Distinct().OrderByDescending(x => x).Select((score, rank) => (score, rank)).ToDictionary(x => x.score, x => x.rank);
        var merges = new List<(string, string, int)>();
        foreach (var (piece, score, _, _) in normal)
        {
            for (var k = 1; k < piece.Length; k++)
            {
                if (char.IsLowSurrogate(piece[k]))
                {
                    continue;
                }

                var left = piece[..k];
                var right = piece[k..];
                if (vocab.ContainsKey(left) && vocab.ContainsKey(right))
                {
                    merges.Add((left, right, scoreRank[score]));
                }
            }
        }

        var unk = sp.UnkId >= 0 && sp.UnkId < sp.Pieces.Count ? sp.Pieces[sp.UnkId].Piece : null;
        return (new BpeModel(vocab, merges, unk, sp.ByteFallback, fuseUnk: true, ignoreMerges: false, source), vocab);
    }

    /// <summary>True when no vocabulary entry has ▁ after another character (so BPE merges never cross such a boundary).</summary>
    private static bool IsMetaspaceSplitSafe(Dictionary<string, int> vocab)
    {
        foreach (var tok in vocab.Keys)
        {
            for (var i = 1; i < tok.Length; i++)
            {
                if (tok[i] == '▁' && tok[i - 1] != '▁')
                {
                    return false;
                }
            }
        }

        return true;
    }

    private static (BpeModel Bpe, Dictionary<string, int> Vocab) LoadByteLevelFiles(string vocabPath, string mergesPath)
    {
        using var doc = ParseJson(vocabPath);
        var vocab = ReadVocab(doc.RootElement, vocabPath);
        var merges = new List<(string, string)>();
        var lineNo = 0;
        foreach (var line in File.ReadLines(mergesPath, Encoding.UTF8))
        {
            lineNo++;
            if (line.Length == 0 || (lineNo == 1 && line.StartsWith("#version", StringComparison.Ordinal)))
            {
                continue;
            }

            var sp = line.IndexOf(' ', 1);
            if (sp <= 0)
            {
                throw new DpoSharpException($"{mergesPath}: line {lineNo} is not a merge 'left right'.");
            }

            merges.Add((line[..sp], line[(sp + 1)..]));
        }

        return (new BpeModel(vocab, merges, null, false, false, false, mergesPath), vocab);
    }

    private static Dictionary<string, int> ReadVocab(JsonElement el, string file)
    {
        if (el.ValueKind != JsonValueKind.Object)
        {
            throw new DpoSharpException($"{file}: the vocabulary is not a JSON object of token → id.");
        }

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in el.EnumerateObject())
        {
            vocab[p.Name] = p.Value.GetInt32();
        }

        return vocab;
    }

    private static List<(string, string)> ReadMerges(JsonElement el, string file)
    {
        var merges = new List<(string, string)>(el.GetArrayLength());
        foreach (var m in el.EnumerateArray())
        {
            if (m.ValueKind == JsonValueKind.String)
            {
                var s = m.GetString()!;
                var sp = s.IndexOf(' ', 1);
                if (sp <= 0)
                {
                    throw new DpoSharpException($"{file}: merge '{s}' is not 'left right'.");
                }

                merges.Add((s[..sp], s[(sp + 1)..]));
            }
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2)
            {
                merges.Add((m[0].GetString()!, m[1].GetString()!));
            }
            else
            {
                throw new DpoSharpException($"{file}: a merge is neither a string nor a pair of strings.");
            }
        }

        return merges;
    }

    private static TextNormalizer? ParseNormalizer(JsonElement n, string file)
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

    private static PreTokenizerStep? ParsePreTokenizer(JsonElement p, string file)
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

    private static TokenDecoder? ParseDecoder(JsonElement d, string file)
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

    private static (int[] Prefix, int[] Suffix) ParsePostProcessor(JsonElement pp, Dictionary<string, int> vocab, List<AddedToken> added, string file)
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

    private static Dictionary<string, string> ReadSpecialStrings(JsonElement? cfg, JsonElement? specialMap)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var key in SpecialKeys)
        {
            var s = TokenString(cfg, key) ?? TokenString(specialMap, key);
            if (s is not null)
            {
                result[key] = s;
            }
        }

        return result;
    }

    private static IEnumerable<string> ReadAdditionalSpecial(JsonElement? cfg, JsonElement? specialMap)
    {
        foreach (var src in new[] { cfg, specialMap })
        {
            if (src is JsonElement e && e.ValueKind == JsonValueKind.Object && e.TryGetProperty("additional_special_tokens", out var arr) && arr.ValueKind == JsonValueKind.Array)
            {
                foreach (var x in arr.EnumerateArray())
                {
                    if (TokenContent(x) is string s)
                    {
                        yield return s;
                    }
                }
            }
        }
    }

    private static string? TokenString(JsonElement? obj, string key) =>
        obj is JsonElement e && e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) ? TokenContent(v) : null;

    /// <summary>A token given as a string or as an AddedToken object <c>{"content": …}</c>.</summary>
    private static string? TokenContent(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString(),
        JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
        _ => null,
    };

    private static string? ReadChatTemplate(string dir, JsonElement? cfg)
    {
        if (cfg is JsonElement e && e.ValueKind == JsonValueKind.Object && e.TryGetProperty("chat_template", out var ct))
        {
            if (ct.ValueKind == JsonValueKind.String)
            {
                return ct.GetString();
            }

            if (ct.ValueKind == JsonValueKind.Array)
            {
                // A list of named templates: use "default" (as transformers does), else the first.
                string? first = null;
                foreach (var item in ct.EnumerateArray())
                {
                    var name = item.TryGetProperty("name", out var n) ? n.GetString() : null;
                    var tmpl = item.TryGetProperty("template", out var t) ? t.GetString() : null;
                    if (name == "default" && tmpl is not null)
                    {
                        return tmpl;
                    }

                    first ??= tmpl;
                }

                return first;
            }
        }

        var jinja = Path.Combine(dir, "chat_template.jinja");
        return File.Exists(jinja) ? File.ReadAllText(jinja) : null;
    }

    private static bool? GetBool(JsonElement? e, string name) =>
        e is JsonElement x && x.ValueKind == JsonValueKind.Object && x.TryGetProperty(name, out var v) && (v.ValueKind == JsonValueKind.True || v.ValueKind == JsonValueKind.False)
            ? v.GetBoolean()
            : null;

    private static JsonDocument? ReadJsonObject(string path) => File.Exists(path) ? ParseJson(path) : null;

    private static JsonDocument ParseJson(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new DpoSharpException($"{path}: invalid JSON at line {(e.LineNumber ?? 0) + 1}, byte {(e.BytePositionInLine ?? 0) + 1}: {e.Message}", e);
        }
        catch (IOException e)
        {
            throw new DpoSharpException($"{path}: cannot be read ({e.Message}).", e);
        }
    }
}
