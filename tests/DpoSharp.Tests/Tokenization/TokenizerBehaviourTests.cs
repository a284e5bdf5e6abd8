using System.Text;
using System.Text.Json.Nodes;
using DpoSharp.Tokenization;
using Xunit.Abstractions;

namespace DpoSharp.Tests.Tokenization;

/// <summary>Special tokens, decoding, the other file layouts and pre-tokenizer types, against published ids.</summary>
public sealed class TokenizerBehaviourTests(ITestOutputHelper output)
{
    private const string Vectors = "data/tokenizer-tests/llama.cpp";

    [SkippableFact]
    public void Gpt2KnownIdsAndSpecialTokens()
    {
        var dir = TestPaths.SharedOrSkip(output, "data/tokenizers/gpt2-openai");
        var tok = HfTokenizer.Load(dir);

        // Ids as documented for GPT-2 (transformers' GPT2Tokenizer docs, tiktoken's gpt2 encoding).
        Assert.Equal([15496, 995], tok.Encode("Hello world"));
        Assert.Equal([18435, 995], tok.Encode(" Hello world"));
        Assert.Equal([15496, 995], tok.Encode("Hello world", addSpecialTokens: true)); // GPT-2 adds no BOS
        Assert.Equal([15496, 995, 50256], tok.Encode("Hello world<|endoftext|>"));
        Assert.Equal(50257, tok.VocabSize);
        Assert.Equal(50256, tok.BosTokenId);
        Assert.Equal(50256, tok.EosTokenId);
        Assert.Equal(50256, tok.PadTokenId); // no pad token: EOS
        Assert.False(tok.AddsBosToken);
        Assert.Equal("<|endoftext|>", tok.IdToToken(50256));
        Assert.Equal("Ġworld", tok.IdToToken(995));
        Assert.Equal("Hello world", tok.Decode([15496, 995, 50256], skipSpecialTokens: true));
        Assert.Equal("Hello world<|endoftext|>", tok.Decode([15496, 995, 50256]));

        // Spelled out, the special token is ordinary text: < | end of text | >
        Assert.Equal([27, 91, 437, 1659, 5239, 91, 29], tok.EncodeOrdinary("<|endoftext|>"));
    }

    [SkippableFact]
    public void Llama2SpecialTokensAndBos()
    {
        var dir = TestPaths.SharedOrSkip(output, "data/tokenizers/llama-2");
        var tok = HfTokenizer.Load(dir);

        // Ids as in llama.cpp's tokenizer tests for LLaMA ("Hello World" = 10994 2787, " Hello World" = 15043 2787).
        Assert.Equal([1, 15043, 3186], tok.Encode("Hello world", addSpecialTokens: true));
        Assert.Equal([15043, 3186], tok.Encode("Hello world"));
        Assert.True(tok.AddsBosToken);
        Assert.Equal(1, tok.BosTokenId);
        Assert.Equal(2, tok.EosTokenId);
        Assert.Equal(0, tok.PadTokenId); // pad_token "<unk>" in tokenizer_config.json
        Assert.Equal("<s>", tok.BosToken);
        Assert.Equal("</s>", tok.EosToken);
        Assert.Equal(32000, tok.VocabSize);

        // Special tokens in text are atomic; the text after them gets its own "▁" prefix (Hugging Face, legacy).
        Assert.Equal([1, 15043, 2], tok.Encode("<s>Hello</s>"));
        Assert.Equal([1, 1, 15043], tok.Encode("<s>Hello", addSpecialTokens: true));
        Assert.Equal("<s> Hello</s>", tok.Decode([1, 15043, 2]));
        Assert.Equal("Hello", tok.Decode([1, 15043, 2], skipSpecialTokens: true));

        // Byte fallback: an emoji that is not in the vocabulary becomes its UTF-8 bytes, and decodes back
        // (llama.cpp's LLaMA test: " this is 🦙.cpp" → ▁this ▁is ▁ <F0> <9F> <A6> <99> . cpp).
        Assert.Equal([445, 338, 29871, 243, 162, 169, 156, 29889, 8223], tok.Encode("this is 🦙.cpp"));
        Assert.Equal("this is 🦙.cpp", tok.Decode([445, 338, 29871, 243, 162, 169, 156, 29889, 8223]));
    }

    [SkippableTheory]
    [InlineData("data/tokenizers/gpt2-openai", "ggml-vocab-gpt-2.gguf")]
    [InlineData("data/tokenizers/phi-2", "ggml-vocab-gpt-2.gguf")]
    [InlineData("data/tokenizers/llama-2", "ggml-vocab-llama-spm.gguf")]
    public void DecodeRoundTripsEveryVectorString(string tokenizer, string vectors)
    {
        var dir = TestPaths.SharedOrSkip(output, tokenizer);
        var vec = TestPaths.SharedOrSkip(output, Vectors);
        var tok = HfTokenizer.Load(dir);
        foreach (var (text, ids) in TokenizerConformanceTests.ReadVectors(vec, vectors))
        {
            Assert.Equal(text, tok.Decode(tok.Encode(text)));
            Assert.Equal(text, tok.Decode(ids));
        }
    }

    [SkippableFact]
    public void SplitThenByteLevelPreTokenizerMatchesGpt2()
    {
        // Qwen2 / Llama-3 spell byte-level pre-tokenization as Sequence[Split(regex), ByteLevel(use_regex=false)]
        // and Phi-2 as ByteLevel(use_regex=true): with GPT-2's regex both must give GPT-2's vectors.
        var dir = TestPaths.SharedOrSkip(output, "data/tokenizers/phi-2");
        var vec = TestPaths.SharedOrSkip(output, Vectors);
        using var tmp = TestPaths.CreateTempDir();
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer.json")))!;
        json["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 50256, ["content"] = "<|endoftext|>", ["special"] = true });
        json["pre_tokenizer"] = JsonNode.Parse("""
            {"type":"Sequence","pretokenizers":[
              {"type":"Split","pattern":{"Regex":"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false},
              {"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]}
            """);
        File.WriteAllText(Path.Combine(tmp.Path, "tokenizer.json"), json.ToJsonString());
        var tok = HfTokenizer.Load(tmp.Path);
        foreach (var (text, ids) in TokenizerConformanceTests.ReadVectors(vec, "ggml-vocab-gpt-2.gguf"))
        {
            Assert.Equal(ids, tok.Encode(text));
        }
    }

    [SkippableFact]
    public void MetaspacePreTokenizerMatchesLlamaVectors()
    {
        // Newer SentencePiece-BPE tokenizer.json files (Mistral, TinyLlama re-exports) use a Metaspace
        // pre-tokenizer (prepend_scheme "first", no split) instead of Prepend/Replace normalizers. Unlike the
        // legacy normalizer it adds no "▁" to text already starting with a space, so " x" encodes as legacy "x".
        var dir = TestPaths.SharedOrSkip(output, "data/tokenizers/llama-2");
        var vec = TestPaths.SharedOrSkip(output, Vectors);
        using var tmp = TestPaths.CreateTempDir();
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer.json")))!;
        json["normalizer"] = null;
        json["pre_tokenizer"] = JsonNode.Parse("""{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false}""");
        json["decoder"] = JsonNode.Parse("""{"type":"Sequence","decoders":[{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false},{"type":"ByteFallback"},{"type":"Fuse"}]}""");
        File.WriteAllText(Path.Combine(tmp.Path, "tokenizer.json"), json.ToJsonString());
        var tok = HfTokenizer.Load(tmp.Path);
        var legacy = HfTokenizer.Load(dir);
        var leadingSpace = 0;
        foreach (var (text, ids) in TokenizerConformanceTests.ReadVectors(vec, "ggml-vocab-llama-spm.gguf"))
        {
            if (!text.StartsWith(' '))
            {
                Assert.Equal(ids, tok.Encode(text));
            }
            else
            {
                leadingSpace++;
                Assert.Equal(text == " " ? [29871] : legacy.Encode(text[1..]), tok.Encode(text));
            }
        }

        Assert.True(leadingSpace >= 5);
        Assert.Equal([1, 15043], tok.Encode("Hello", addSpecialTokens: true));
    }

    [SkippableFact]
    public void SentencePieceModelFileMatchesLlamaVectors()
    {
        // A directory with only tokenizer.model (SentencePiece protobuf). Built here from Llama-2's vocabulary
        // with SentencePiece's conventions (scores decreasing with id, byte pieces, control tokens).
        var dir = TestPaths.SharedOrSkip(output, "data/tokenizers/llama-2");
        var vec = TestPaths.SharedOrSkip(output, Vectors);
        using var tmp = TestPaths.CreateTempDir();
        var vocab = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer.json")))!["model"]!["vocab"]!.AsObject()
            .OrderBy(p => (int)p.Value!).Select(p => p.Key).ToList();
        File.WriteAllBytes(Path.Combine(tmp.Path, "tokenizer.model"), SentencePieceModelWriter.Write(vocab));
        var tok = HfTokenizer.Load(tmp.Path);
        foreach (var (text, ids) in TokenizerConformanceTests.ReadVectors(vec, "ggml-vocab-llama-spm.gguf"))
        {
            Assert.Equal(ids, tok.Encode(text));
            Assert.Equal(text, tok.Decode(ids));
        }

        Assert.Equal([1, 15043, 3186], tok.Encode("Hello world", addSpecialTokens: true));
        Assert.Equal(1, tok.BosTokenId);
        Assert.Equal(2, tok.EosTokenId);
        Assert.Equal(2, tok.PadTokenId); // no pad token: EOS
    }

    [Fact]
    public void ConfigSpecialTokensAsObjectsTemplateListAndAddEos()
    {
        using var tmp = TestPaths.CreateTempDir();
        WriteTinyByteLevel(tmp.Path);
        File.WriteAllText(Path.Combine(tmp.Path, "tokenizer_config.json"), """
            {
              "tokenizer_class": "LlamaTokenizerFast",
              "add_bos_token": true,
              "add_eos_token": true,
              "bos_token": {"content": "<s>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false},
              "eos_token": "</s>",
              "chat_template": [
                {"name": "tool_use", "template": "TOOLS"},
                {"name": "default", "template": "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}{{ eos_token }}"}
              ]
            }
            """);
        var tok = HfTokenizer.Load(tmp.Path);
        var bos = tok.TokenToId("<s>")!.Value;
        var eos = tok.TokenToId("</s>")!.Value;
        Assert.Equal(bos, tok.BosTokenId);
        Assert.Equal(eos, tok.PadTokenId);
        var ids = tok.Encode("ab", addSpecialTokens: true);
        Assert.Equal(bos, ids[0]);
        Assert.Equal(eos, ids[^1]);
        Assert.True(tok.AddsBosToken);
        Assert.True(tok.AddsEosToken);
        Assert.Equal("<s>ab</s>", tok.ApplyChatTemplate([new ChatMessage("user", "ab")], addGenerationPrompt: false));
    }

    [Fact]
    public void AddedTokenStripFlagsAndNonSpecialTokensSurviveSkip()
    {
        using var tmp = TestPaths.CreateTempDir();
        WriteTinyByteLevel(tmp.Path);
        var path = Path.Combine(tmp.Path, "tokenizer.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!;
        json["added_tokens"]!.AsArray().Add(new JsonObject { ["id"] = 260, ["content"] = "<|end|>", ["special"] = true, ["rstrip"] = true });
        json["added_tokens"]!.AsArray().Add(new JsonObject { ["id"] = 261, ["content"] = "<x>", ["special"] = false, ["lstrip"] = true });
        File.WriteAllText(path, json.ToJsonString());
        var tok = HfTokenizer.Load(tmp.Path);

        // rstrip swallows the whitespace after the token, lstrip the whitespace before it.
        // Byte-level ids: 'a' = 97, 'b' = 98, 'c' = 99, ' ' = 'Ġ' (byte 32 is mapped to char 288, id 32).
        Assert.Equal([97, 260, 98], tok.Encode("a<|end|>  \n b"));
        Assert.Equal([97, 261, 98], tok.Encode("a   <x>b"));
        Assert.Equal([97, 32, 98], tok.EncodeOrdinary("a b"));
        Assert.Equal([257, 256], tok.Encode("abcab"));
        Assert.Equal("a<x>b", tok.Decode([97, 260, 261, 98], skipSpecialTokens: true));
        Assert.Equal("a<|end|><x>b", tok.Decode([97, 260, 261, 98]));
    }

    [Fact]
    public void MissingDirectoryOrFilesAreClearErrors()
    {
        using var tmp = TestPaths.CreateTempDir();
        var missing = Path.Combine(tmp.Path, "nope");
        var e1 = Assert.Throws<DpoSharpException>(() => HfTokenizer.Load(missing));
        Assert.Contains("does not exist", e1.Message);
        File.WriteAllText(Path.Combine(tmp.Path, "config.json"), "{}");
        var e2 = Assert.Throws<DpoSharpException>(() => HfTokenizer.Load(tmp.Path));
        Assert.Contains("tokenizer.json", e2.Message);
        Assert.Contains("config.json", e2.Message); // lists what is there
        File.WriteAllText(Path.Combine(tmp.Path, "tokenizer.json"), "{ not json");
        var e3 = Assert.Throws<DpoSharpException>(() => HfTokenizer.Load(tmp.Path));
        Assert.Contains("tokenizer.json", e3.Message);
        Assert.Contains("invalid JSON", e3.Message);
    }

    [Fact]
    public void NfcNormalizerComposesDecomposedText()
    {
        // Qwen2's tokenizer.json has an NFC normalizer: "e" + U+0301 (combining acute) must encode as "é" (U+00E9),
        // whose UTF-8 bytes C3 A9 are byte symbols 0xC3 and 0xA9 of the byte-level alphabet.
        using var tmp = TestPaths.CreateTempDir();
        WriteTinyByteLevel(tmp.Path);
        var path = Path.Combine(tmp.Path, "tokenizer.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        json["normalizer"] = new JsonObject { ["type"] = "NFC" };
        File.WriteAllText(path, json.ToJsonString(), Encoding.UTF8);
        var tok = HfTokenizer.Load(tmp.Path);
        Assert.Equal(new[] { 0xC3, 0xA9 }, tok.Encode("e\u0301").ToArray());
        Assert.Equal(new[] { 0xC3, 0xA9 }, tok.Encode("\u00e9").ToArray());
    }

    /// <summary>A tiny byte-level BPE: the 256 byte symbols, merges a+b and ab+c, and specials &lt;s&gt; &lt;/s&gt;.</summary>
    internal static void WriteTinyByteLevel(string dir)
    {
        var vocab = new JsonObject();
        var byteChars = ByteLevelAlphabet.Chars();
        for (var b = 0; b < 256; b++)
        {
            vocab[byteChars[b]] = b;
        }

        vocab["ab"] = 256;
        vocab["abc"] = 257;
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(
                new JsonObject { ["id"] = 258, ["content"] = "<s>", ["special"] = true },
                new JsonObject { ["id"] = 259, ["content"] = "</s>", ["special"] = true }),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = true },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel" },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["vocab"] = vocab,
                ["merges"] = new JsonArray("a b", "ab c"),
            },
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString(), Encoding.UTF8);
    }
}

/// <summary>Writes a SentencePiece <c>ModelProto</c> (BPE, byte fallback, Llama's normalizer settings).</summary>
internal static class SentencePieceModelWriter
{
    public static byte[] Write(IReadOnlyList<string> pieces)
    {
        var model = new MemoryStream();
        for (var id = 0; id < pieces.Count; id++)
        {
            var p = pieces[id];
            var type = id == 0 ? 2 : id <= 2 ? 3 : p.Length == 6 && p.StartsWith("<0x", StringComparison.Ordinal) ? 6 : 1; // UNKNOWN, CONTROL, BYTE, NORMAL
            // Llama's runs of spaces ("▁▁", "▁▁▁▁", …) were added by hand with score -1e9: they merge last.
            var score = type != 1 ? 0f : p.Length > 1 && p.All(c => c == '▁') ? -1e9f : -(float)id;
            var piece = new MemoryStream();
            WriteBytes(piece, 1, Encoding.UTF8.GetBytes(p));
            WriteTag(piece, 2, 5);
            piece.Write(BitConverter.GetBytes(score));
            WriteVarintField(piece, 3, (ulong)type);
            WriteBytes(model, 1, piece.ToArray());
        }

        var trainer = new MemoryStream();
        WriteVarintField(trainer, 3, 2); // model_type = BPE
        WriteVarintField(trainer, 35, 1); // byte_fallback = true
        WriteBytes(model, 2, trainer.ToArray());
        var normalizer = new MemoryStream();
        WriteBytes(normalizer, 1, "identity"u8.ToArray());
        WriteVarintField(normalizer, 3, 1); // add_dummy_prefix
        WriteVarintField(normalizer, 4, 0); // remove_extra_whitespaces = false
        WriteVarintField(normalizer, 5, 1); // escape_whitespaces
        WriteBytes(model, 3, normalizer.ToArray());
        return model.ToArray();
    }

    private static void WriteTag(Stream s, int field, int wireType) => WriteVarint(s, (ulong)((field << 3) | wireType));

    private static void WriteVarintField(Stream s, int field, ulong value)
    {
        WriteTag(s, field, 0);
        WriteVarint(s, value);
    }

    private static void WriteBytes(Stream s, int field, byte[] bytes)
    {
        WriteTag(s, field, 2);
        WriteVarint(s, (ulong)bytes.Length);
        s.Write(bytes);
    }

    private static void WriteVarint(Stream s, ulong v)
    {
        while (v >= 0x80)
        {
            s.WriteByte((byte)(v | 0x80));
            v >>= 7;
        }

        s.WriteByte((byte)v);
    }
}
