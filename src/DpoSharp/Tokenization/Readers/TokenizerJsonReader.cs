using System.Text.Json;
using DpoSharp.IO;
using static DpoSharp.Tokenization.Readers.ReaderSupport;

namespace DpoSharp.Tokenization.Readers;

/// <summary>Reads a Hugging Face <c>tokenizer.json</c> (BPE model, added tokens, normalizer, pre-tokenizer,
/// decoder, post-processor) through <see cref="JsonAt"/>: errors name the file and the JSON path.</summary>
internal static class TokenizerJsonReader
{
    /// <summary>Reads <paramref name="tokJson"/>; <see cref="JsonFile.Guard{T}"/> stays the last line of defence.</summary>
    public static TokenizerFileContents Read(string tokJson) => JsonFile.Guard(tokJson, "the tokenizer", () => ReadCore(tokJson));

    private static TokenizerFileContents ReadCore(string tokJson)
    {
        using var doc = ParseJson(tokJson);
        var root = JsonAt.Root(doc, tokJson);
        if (root.Kind != JsonValueKind.Object || root.Find("model") is not { Kind: JsonValueKind.Object } model)
        {
            throw new DpoSharpException($"{tokJson}: no \"model\" object; this is not a Hugging Face tokenizer.json.");
        }

        var (bpe, vocab, byteFallback) = ReadBpeModel(model, tokJson);
        var added = new List<AddedToken>();
        if (root.Find("added_tokens") is { } at)
        {
            foreach (var a in at.Items())
            {
                added.Add(ReadAddedToken(TokenizerJsonComponents.TokenId(a.Object().Get("id")), a));
            }
        }

        var normalizer = root.Find("normalizer") is { } n ? TokenizerJsonComponents.ParseNormalizer(n) : null;
        var preTokenizer = root.Find("pre_tokenizer") is { } pt ? TokenizerJsonComponents.ParsePreTokenizer(pt) : null;
        if (preTokenizer is null && byteFallback && IsMetaspaceSplitSafe(vocab))
        {
            // SentencePiece-style: the whole text is one word; split it where no merge can cross, for the cache.
            preTokenizer = new MetaspaceBoundarySplitter('▁');
        }

        var decoder = root.Find("decoder") is { } d ? TokenizerJsonComponents.ParseDecoder(d) ?? new JoinDecoder() : new JoinDecoder();
        int[] prefix = [];
        int[] suffix = [];
        if (root.Find("post_processor") is { } pp)
        {
            (prefix, suffix) = TokenizerJsonComponents.ParsePostProcessor(pp, vocab, added);
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

    private static (BpeModel Bpe, Dictionary<string, int> Vocab, bool ByteFallback) ReadBpeModel(JsonAt model, string tokJson)
    {
        var type = model.Find("type") is { } t ? t.String() : (model.Find("merges") is not null ? "BPE" : null);
        if (type != "BPE")
        {
            throw new DpoSharpException($"{tokJson}: $.model.type '{type ?? "(none)"}' is not supported; DpoSharp reads BPE tokenizers (GPT-2, Phi-2, Qwen2, Llama, Mistral).");
        }

        var vocab = ReadVocab(model.Get("vocab"));
        var merges = ReadMerges(model.Get("merges"));
        var byteFallback = model.Bool("byte_fallback", false);
        if (model.Find("continuing_subword_prefix") is { } csp && csp.String().Length > 0)
        {
            throw csp.Error("BPE with continuing_subword_prefix is not supported.");
        }

        var bpe = new BpeModel(
            vocab,
            merges,
            model.Find("unk_token") is { Kind: JsonValueKind.String } unk ? unk.String() : null,
            byteFallback,
            model.Bool("fuse_unk", false),
            model.Bool("ignore_merges", false),
            tokJson);
        return (bpe, vocab, byteFallback);
    }

    private static List<(string, string)> ReadMerges(JsonAt el)
    {
        if (el.Kind != JsonValueKind.Array)
        {
            throw el.WrongType("an array of merges (\"left right\" or [\"left\", \"right\"])");
        }

        var merges = new List<(string, string)>(el.Element.GetArrayLength());
        foreach (var m in el.Items())
        {
            if (m.Kind == JsonValueKind.String)
            {
                var s = m.String();
                var sp = s.Length > 1 ? s.IndexOf(' ', 1) : -1;
                if (sp <= 0)
                {
                    throw m.Error($"'{s}' is not 'left right'.");
                }

                merges.Add((s[..sp], s[(sp + 1)..]));
            }
            else if (m.Kind == JsonValueKind.Array && m.Element.GetArrayLength() == 2)
            {
                merges.Add((m.At(0).String(), m.At(1).String()));
            }
            else
            {
                throw new DpoSharpException($"{m.File}: {m.Path} is neither a string \"left right\" nor a pair of strings, found {m.Kind.ToString().ToLowerInvariant()}.");
            }
        }

        return merges;
    }
}
