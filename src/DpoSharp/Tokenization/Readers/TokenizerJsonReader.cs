using System.Text.Json;
using static DpoSharp.Tokenization.Readers.ReaderSupport;

namespace DpoSharp.Tokenization.Readers;

/// <summary>Reads a Hugging Face <c>tokenizer.json</c> (BPE model, added tokens, normalizer, pre-tokenizer,
/// decoder, post-processor).</summary>
internal static class TokenizerJsonReader
{
    public static TokenizerFileContents Read(string tokJson) => IO.JsonFile.Guard(tokJson, "the tokenizer", () => ReadCore(tokJson));

    private static TokenizerFileContents ReadCore(string tokJson)
    {
        using var doc = ParseJson(tokJson);
        var root = doc.RootElement;
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
        {
            throw new DpoSharpException($"{tokJson}: no \"model\" object; this is not a Hugging Face tokenizer.json.");
        }

        var (bpe, vocab, byteFallback) = ReadBpeModel(model, tokJson);
        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array)
        {
            int i = 0;
            foreach (var a in at.EnumerateArray())
            {
                var where = $"added_tokens[{i++}]";
                if (a.ValueKind != JsonValueKind.Object || !a.TryGetProperty("id", out var id))
                {
                    throw new DpoSharpException($"{tokJson}: {where} must be an object with \"id\" and \"content\".");
                }

                var tokenId = IO.JsonFile.Int32(id, tokJson, where + ".id");
                if (tokenId < 0 || tokenId > MaxVocabId)
                {
                    throw new DpoSharpException($"{tokJson}: {where}.id = {tokenId} is not a token id (0..{MaxVocabId}).");
                }

                added.Add(ReadAddedToken(tokenId, a, tokJson, where));
            }
        }

        var normalizer = root.TryGetProperty("normalizer", out var n) ? TokenizerJsonComponents.ParseNormalizer(n, tokJson) : null;
        var preTokenizer = root.TryGetProperty("pre_tokenizer", out var pt) ? TokenizerJsonComponents.ParsePreTokenizer(pt, tokJson) : null;
        if (preTokenizer is null && byteFallback && IsMetaspaceSplitSafe(vocab))
        {
            // SentencePiece-style: the whole text is one word; split it where no merge can cross, for the cache.
            preTokenizer = new MetaspaceBoundarySplitter('▁');
        }

        var decoder = root.TryGetProperty("decoder", out var d) ? TokenizerJsonComponents.ParseDecoder(d, tokJson) ?? new JoinDecoder() : new JoinDecoder();
        int[] prefix = [];
        int[] suffix = [];
        if (root.TryGetProperty("post_processor", out var pp))
        {
            (prefix, suffix) = TokenizerJsonComponents.ParsePostProcessor(pp, vocab, added, tokJson);
        }

        return new TokenizerFileContents
        {
            Source = tokJson,
            Bpe = bpe,
            Normalizer = normalizer,
            PreTokenizer = preTokenizer,
            Decoder = decoder,
            Vocab = vocab,
            Added = added,
            PrefixIds = prefix,
            SuffixIds = suffix,
            UsePostProcessorDefaults = true,
        };
    }

    private static (BpeModel Bpe, Dictionary<string, int> Vocab, bool ByteFallback) ReadBpeModel(JsonElement model, string tokJson)
    {
        var type = model.TryGetProperty("type", out var t) ? t.GetString() : (model.TryGetProperty("merges", out _) ? "BPE" : null);
        if (type != "BPE")
        {
            throw new DpoSharpException($"{tokJson}: model type '{type ?? "(none)"}' is not supported; DpoSharp reads BPE tokenizers (GPT-2, Phi-2, Qwen2, Llama, Mistral).");
        }

        var vocab = ReadVocab(model.GetProperty("vocab"), tokJson);
        var merges = ReadMerges(model.GetProperty("merges"), tokJson);
        var byteFallback = GetBool(model, "byte_fallback") ?? false;
        var bpe = new BpeModel(
            vocab,
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

        return (bpe, vocab, byteFallback);
    }

    private static List<(string, string)> ReadMerges(JsonElement el, string file)
    {
        if (el.ValueKind != JsonValueKind.Array)
        {
            throw new DpoSharpException($"{file}: model.merges must be an array of merges (\"left right\" or [\"left\", \"right\"]), found {el.ValueKind.ToString().ToLowerInvariant()}.");
        }

        var merges = new List<(string, string)>(el.GetArrayLength());
        int i = 0;
        foreach (var m in el.EnumerateArray())
        {
            var where = $"model.merges[{i++}]";
            if (m.ValueKind == JsonValueKind.String)
            {
                var s = m.GetString()!;
                var sp = s.Length > 1 ? s.IndexOf(' ', 1) : -1;
                if (sp <= 0)
                {
                    throw new DpoSharpException($"{file}: {where} '{s}' is not 'left right'.");
                }

                merges.Add((s[..sp], s[(sp + 1)..]));
            }
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2)
            {
                merges.Add((IO.JsonFile.String(m[0], file, where + "[0]"), IO.JsonFile.String(m[1], file, where + "[1]")));
            }
            else
            {
                throw new DpoSharpException($"{file}: {where} is neither a string \"left right\" nor a pair of strings, found {m.ValueKind.ToString().ToLowerInvariant()}.");
            }
        }

        return merges;
    }
}
