using System.Text.Json;
using DpoSharp.Tokenization.Readers;
using static DpoSharp.Tokenization.Readers.ReaderSupport;

namespace DpoSharp.Tokenization;

/// <summary>
/// Reads the tokenizer files of a Hugging Face model directory into <see cref="HfTokenizer.Parts"/>: one reader per
/// source format (first found wins: <see cref="TokenizerJsonReader"/>, <see cref="VocabMergesReader"/>,
/// <see cref="SentencePieceModelReader"/>), then tokenizer_config.json and special_tokens_map.json (special tokens,
/// added tokens, chat template, add_bos_token / add_eos_token).
/// </summary>
internal static class TokenizerLoader
{
    /// <summary>Largest chat_template.jinja read (published templates have a few kilobytes).</summary>
    private const long MaxChatTemplateBytes = 1 << 20;

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
        foreach (var (doc, name) in new[] { (config, "tokenizer_config.json"), (specialMap, "special_tokens_map.json") })
        {
            if (doc is not null && doc.RootElement.ValueKind is var kind && kind != JsonValueKind.Object)
            {
                config?.Dispose();
                specialMap?.Dispose();
                throw new DpoSharpException($"{Path.Combine(modelDir, name)}: expected a JSON object ({{ … }}) at the top level, found {kind.ToString().ToLowerInvariant()}.");
            }
        }

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
        var specialStrings = ReadSpecialStrings(cfg, specialMap?.RootElement);
        var chatTemplate = ReadChatTemplate(dir, cfg);
        var tokenizerClass = cfg is JsonElement c && c.TryGetProperty("tokenizer_class", out var tc) && tc.ValueKind == JsonValueKind.String ? tc.GetString() : null;
        bool? addBos = GetBool(cfg, "add_bos_token");
        bool? addEos = GetBool(cfg, "add_eos_token");

        var files = ReadTokenizerFiles(dir, cfg);
        addBos ??= files.DefaultAddBos;
        foreach (var (key, token) in files.DefaultSpecialTokens)
        {
            specialStrings.TryAdd(key, token);
        }

        var added = files.Added;
        AddConfiguredTokens(Path.Combine(dir, "tokenizer_config.json"), added, files.Vocab, cfg, specialMap?.RootElement, specialStrings);
        var prefix = files.PrefixIds;
        var suffix = files.SuffixIds;
        if (!files.UsePostProcessorDefaults || (tokenizerClass is not null && LlamaLikeClasses.Contains(tokenizerClass) && (addBos is not null || addEos is not null)))
        {
            // Llama-style tokenizers (and layouts without a post-processor): add_bos_token / add_eos_token decide.
            int? Id(string key) => specialStrings.TryGetValue(key, out var s) && (added.FirstOrDefault(a => a.Content == s)?.Id ?? (files.Vocab.TryGetValue(s, out var i) ? i : null)) is int x ? x : null;
            var bosId = Id("bos_token");
            var eosId = Id("eos_token");
            var usePrefix = addBos ?? (prefix.Length > 0);
            var useSuffix = addEos ?? false;
            prefix = usePrefix && bosId is int b ? [b] : (addBos is null ? prefix : []);
            suffix = useSuffix && eosId is int e ? [e] : (addEos is null ? suffix : []);
        }

        return new HfTokenizer.Parts
        {
            File = files,
            Added = added,
            SpecialTokenStrings = specialStrings,
            PrefixIds = prefix,
            SuffixIds = suffix,
            ChatTemplate = chatTemplate,
            ChatTemplateFile = File.Exists(Path.Combine(dir, "chat_template.jinja")) && !(cfg is JsonElement ce && ce.ValueKind == JsonValueKind.Object && ce.TryGetProperty("chat_template", out _))
                ? Path.Combine(dir, "chat_template.jinja")
                : Path.Combine(dir, "tokenizer_config.json"),
        };
    }

    /// <summary>Chooses the reader by the files present (first found wins).</summary>
    private static TokenizerFileContents ReadTokenizerFiles(string dir, JsonElement? cfg)
    {
        var tokJson = Path.Combine(dir, "tokenizer.json");
        if (File.Exists(tokJson))
        {
            return TokenizerJsonReader.Read(tokJson);
        }

        if (File.Exists(Path.Combine(dir, "vocab.json")) && File.Exists(Path.Combine(dir, "merges.txt")))
        {
            return VocabMergesReader.Read(Path.Combine(dir, "vocab.json"), Path.Combine(dir, "merges.txt"), GetBool(cfg, "add_prefix_space") ?? false);
        }

        if (File.Exists(Path.Combine(dir, "encoder.json")) && File.Exists(Path.Combine(dir, "vocab.bpe")))
        {
            return VocabMergesReader.ReadOpenAiGpt2(Path.Combine(dir, "encoder.json"), Path.Combine(dir, "vocab.bpe"), GetBool(cfg, "add_prefix_space") ?? false);
        }

        if (File.Exists(Path.Combine(dir, "tokenizer.model")))
        {
            return SentencePieceModelReader.Read(Path.Combine(dir, "tokenizer.model"));
        }

        var present = Directory.EnumerateFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        throw new DpoSharpException(
            $"No tokenizer files in '{dir}': expected tokenizer.json, or tokenizer.model, or vocab.json + merges.txt, or encoder.json + vocab.bpe. " +
            $"Files present: {(present.Count == 0 ? "none" : string.Join(", ", present))}.");
    }

    /// <summary>Added tokens declared in tokenizer_config.json, and the special-token strings themselves.</summary>
    private static void AddConfiguredTokens(string configFile, List<AddedToken> added, IReadOnlyDictionary<string, int> vocab, JsonElement? cfg, JsonElement? specialMap, Dictionary<string, string> specialStrings)
    {
        if (cfg is JsonElement cfgEl && cfgEl.TryGetProperty("added_tokens_decoder", out var atd) && atd.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in atd.EnumerateObject())
            {
                if (int.TryParse(p.Name, out var id) && p.Value.ValueKind == JsonValueKind.Object && !added.Any(a => a.Id == id))
                {
                    if (id < 0 || id > MaxVocabId)
                    {
                        throw new DpoSharpException($"{configFile}: added_tokens_decoder key \"{p.Name}\" is not a token id (0..{MaxVocabId}).");
                    }

                    added.Add(ReadAddedToken(id, new IO.JsonAt(p.Value, configFile, $"$.added_tokens_decoder[\"{p.Name}\"]")));
                }
            }
        }

        foreach (var s in specialStrings.Values.Concat(ReadAdditionalSpecial(cfg, specialMap)))
        {
            if (!added.Any(a => a.Content == s) && vocab.TryGetValue(s, out var id))
            {
                added.Add(new AddedToken(id, s, Special: true));
            }
        }
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
                foreach (var item in new IO.JsonAt(ct, Path.Combine(dir, "tokenizer_config.json"), "$.chat_template").Items())
                {
                    var name = item.Object().Find("name")?.String();
                    var tmpl = item.Find("template")?.String();
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
        if (!File.Exists(jinja))
        {
            return null;
        }

        // Read as the JSON files are: bounded and valid UTF-8 (a template is a few kilobytes).
        if (new FileInfo(jinja).Length > MaxChatTemplateBytes)
        {
            throw new DpoSharpException($"{jinja}: {new FileInfo(jinja).Length:N0} bytes, more than the {MaxChatTemplateBytes:N0} a chat template may have; is this the right file?");
        }

        return System.Text.Encoding.UTF8.GetString(IO.JsonFile.ReadBytes(jinja));
    }
}
