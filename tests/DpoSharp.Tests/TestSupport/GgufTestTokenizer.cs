using System.Text.Json.Nodes;

namespace DpoSharp.Tests.TestSupport;

/// <summary>
/// A byte-level BPE tokenizer llama.cpp accepts, for GGUF tests: the 256 byte symbols (GPT-2's alphabet), merges
/// learnt by counting pairs over a small English text (real BPE training), and special tokens
/// <c>&lt;|endoftext|&gt;</c> (BOS/EOS), <c>&lt;|im_start|&gt;</c>, <c>&lt;|im_end|&gt;</c>, plus a chat template.
/// </summary>
internal static class GgufTestTokenizer
{
    public const int Merges = 40;

    /// <summary>Byte tokens + merges + 3 specials.</summary>
    public const int Size = 256 + Merges + 3;

    /// <summary>The embedding rows of the test models: <see cref="Size"/> rounded up to 320 (unused rows become
    /// [PAD] tokens in the GGUF file).</summary>
    public const int VocabSize = 320;

    public const int EndOfText = 256 + Merges;

    public const string Template = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}";

    private const string Corpus = "the cat sat on the mat and the dog ate the bone; then the cat and the dog sat in the sun " +
        "while the other cats went into the house and the rest of the animals stayed there in the garden";

    /// <summary>Writes tokenizer.json and tokenizer_config.json into <paramref name="dir"/>.</summary>
    public static void Write(string dir)
    {
        var chars = ByteLevelAlphabet.Chars();
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++)
        {
            vocab[chars[b]] = b;
        }

        // Words as symbol lists (a leading space is "Ġ", GPT-2's symbol for byte 0x20), then greedy pair merges.
        var words = Corpus.Split(' ').Select((w, i) => (i == 0 ? w : " " + w).Select(c => chars[c]).ToList()).ToList();
        var merges = new JsonArray();
        int next = 256;
        while (merges.Count < Merges)
        {
            var best = words.SelectMany(w => w.Zip(w.Skip(1))).GroupBy(p => p).OrderByDescending(g => g.Count()).ThenBy(g => g.Key.First + g.Key.Second, StringComparer.Ordinal).First().Key;
            merges.Add($"{best.First} {best.Second}");
            vocab[best.First + best.Second] = next++;
            foreach (var w in words)
            {
                for (int i = 0; i < w.Count - 1; i++)
                {
                    if (w[i] == best.First && w[i + 1] == best.Second)
                    {
                        w[i] += w[i + 1];
                        w.RemoveAt(i + 1);
                    }
                }
            }
        }

        var added = new JsonArray();
        foreach (var (text, id) in new[] { ("<|endoftext|>", EndOfText), ("<|im_start|>", EndOfText + 1), ("<|im_end|>", EndOfText + 2) })
        {
            added.Add(new JsonObject { ["id"] = id, ["content"] = text, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true });
        }

        var tokenizer = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = false, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = merges },
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizer.ToJsonString());
        var config = new JsonObject
        {
            ["tokenizer_class"] = "GPT2Tokenizer",
            ["bos_token"] = "<|endoftext|>",
            ["eos_token"] = "<|im_end|>",
            ["unk_token"] = "<|endoftext|>",
            ["add_bos_token"] = false,
            ["chat_template"] = Template,
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
    }

    /// <summary>A tiny checkpoint of <paramref name="modelType"/> with this tokenizer (vocab <see cref="VocabSize"/>).</summary>
    public static string Checkpoint(string dir, string modelType, long seed = 11, Action<JsonObject>? configure = null)
    {
        TinyCheckpoints.Write(dir, modelType, seed: seed, vocabSize: VocabSize, withTokenizer: false, configure: c =>
        {
            c["bos_token_id"] = EndOfText;
            c["eos_token_id"] = EndOfText + 2;
            configure?.Invoke(c);
        });
        Write(dir);
        return dir;
    }
}
