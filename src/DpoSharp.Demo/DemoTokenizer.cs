using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DpoSharp.Tokenization;

namespace DpoSharp.Demo;

/// <summary>
/// Writes a tiny GPT-2-style byte-level BPE tokenizer (<c>tokenizer.json</c> + <c>tokenizer_config.json</c>) whose
/// merges turn every word of a given list into exactly one token, so the demo's sentences are a handful of tokens
/// while any other text still encodes (byte by byte). The files are standard Hugging Face ones: DpoSharp's
/// <c>HfTokenizer</c>, <c>dposharp generate</c> and transformers' <c>AutoTokenizer</c> load them.
/// </summary>
public static class DemoTokenizer
{
    /// <summary>The single special token: end of text (also used as BOS/PAD, as GPT-2 does).</summary>
    public const string EndOfText = "<|endoftext|>";

    /// <summary>
    /// Writes the tokenizer files into <paramref name="directory"/> (created if needed) and returns the vocabulary
    /// size (the special token is the last id). <paramref name="words"/> are pre-tokens as GPT-2's regex splits text,
    /// including their leading space (e.g. <c>" larger"</c>, <c>","</c>, <c>"Which"</c>).
    /// </summary>
    public static int Write(string directory, IEnumerable<string> words)
    {
        ArgumentNullException.ThrowIfNull(words);
        Directory.CreateDirectory(directory);
        var byteToChar = BytesToUnicode();
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int b = 0; b < 256; b++)
        {
            vocab[byteToChar[b].ToString()] = vocab.Count;
        }

        var merges = new List<string>();
        var seenMerges = new HashSet<string>(StringComparer.Ordinal);
        foreach (var word in words)
        {
            var symbols = Encoding.UTF8.GetBytes(word).Select(b => byteToChar[b].ToString()).ToList();
            // Left-to-right chain: prefix + next symbol. Every merge's left side starts at the word's first byte, so
            // merges of different words never interfere.
            string prefix = symbols[0];
            for (int i = 1; i < symbols.Count; i++)
            {
                string merge = prefix + " " + symbols[i];
                prefix += symbols[i];
                if (seenMerges.Add(merge))
                {
                    merges.Add(merge);
                }

                vocab.TryAdd(prefix, vocab.Count);
            }
        }

        int eosId = vocab.Count;
        var vocabJson = new JsonObject();
        foreach (var (tok, id) in vocab)
        {
            vocabJson[tok] = id;
        }

        var byteLevel = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true };
        var tokenizer = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = new JsonArray(new JsonObject
            {
                ["id"] = eosId,
                ["content"] = EndOfText,
                ["single_word"] = false,
                ["lstrip"] = false,
                ["rstrip"] = false,
                ["normalized"] = false,
                ["special"] = true,
            }),
            ["normalizer"] = null,
            ["pre_tokenizer"] = byteLevel.DeepClone(),
            ["post_processor"] = byteLevel.DeepClone(),
            ["decoder"] = byteLevel.DeepClone(),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = null,
                ["continuing_subword_prefix"] = "",
                ["end_of_word_suffix"] = "",
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["ignore_merges"] = false,
                ["vocab"] = vocabJson,
                ["merges"] = new JsonArray([.. merges.Select(m => (JsonNode?)JsonValue.Create(m))]),
            },
        };
        var options = new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        File.WriteAllText(Path.Combine(directory, "tokenizer.json"), tokenizer.ToJsonString(options));
        var config = new JsonObject
        {
            ["tokenizer_class"] = "GPT2TokenizerFast",
            ["bos_token"] = EndOfText,
            ["eos_token"] = EndOfText,
            ["pad_token"] = EndOfText,
            ["unk_token"] = EndOfText,
            ["add_bos_token"] = false,
            ["add_prefix_space"] = false,
            ["model_max_length"] = 64,
            ["clean_up_tokenization_spaces"] = false,
        };
        File.WriteAllText(Path.Combine(directory, "tokenizer_config.json"), config.ToJsonString(options));
        File.WriteAllText(Path.Combine(directory, "special_tokens_map.json"), new JsonObject
        {
            ["bos_token"] = EndOfText,
            ["eos_token"] = EndOfText,
            ["pad_token"] = EndOfText,
            ["unk_token"] = EndOfText,
        }.ToJsonString(options));
        return eosId + 1;
    }

    /// <summary>
    /// GPT-2's reversible byte → printable character map (the table byte-level BPE vocabularies and DpoSharp's
    /// tokenizer use): printable bytes stand for themselves, the others map to U+0100 onwards in byte order.
    /// </summary>
    public static char[] BytesToUnicode() => [.. ByteLevelMapping.ByteToChar];
}
