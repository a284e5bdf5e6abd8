using System.Text;
using System.Text.Json.Nodes;
using DpoSharp.Tokenization.Readers;

namespace DpoSharp.Tests.Tokenization;

/// <summary>Each tokenizer source format's reader, on tiny files: what it reads and the format-specific defaults
/// it hands to the loader.</summary>
public sealed class TokenizerReadersTests
{
    [Fact]
    public void TokenizerJsonReaderKeepsItsPostProcessor()
    {
        using var tmp = TestPaths.CreateTempDir();
        TokenizerBehaviourTests.WriteTinyByteLevel(tmp.Path);
        var path = Path.Combine(tmp.Path, "tokenizer.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        json["post_processor"] = new JsonObject { ["type"] = "RobertaProcessing", ["cls"] = new JsonArray("<s>", 258), ["sep"] = new JsonArray("</s>", 259) };
        File.WriteAllText(path, json.ToJsonString(), Encoding.UTF8);

        var r = TokenizerJsonReader.Read(path);
        Assert.Equal(path, r.Source);
        Assert.NotNull(r.Bpe);
        Assert.Equal(258, r.Vocab.Count);
        Assert.Equal(["<s>", "</s>"], r.Added.Select(a => a.Content));
        Assert.Equal([258], r.PrefixIds);
        Assert.Equal([259], r.SuffixIds);
        Assert.True(r.UsePostProcessorDefaults);
        Assert.Null(r.DefaultAddBos);
        Assert.Empty(r.DefaultSpecialTokens);
    }

    [Fact]
    public void VocabMergesReaderReadsBothLayouts()
    {
        using var tmp = TestPaths.CreateTempDir();
        var vocab = new JsonObject();
        var byteChars = ByteLevelAlphabet.Chars();
        for (var b = 0; b < 256; b++)
        {
            vocab[byteChars[b]] = b;
        }

        vocab["ab"] = 256;
        File.WriteAllText(Path.Combine(tmp.Path, "vocab.json"), vocab.ToJsonString(), Encoding.UTF8);
        File.WriteAllText(Path.Combine(tmp.Path, "merges.txt"), "#version: 0.2\na b\n", Encoding.UTF8);
        vocab["<|endoftext|>"] = 257;
        File.WriteAllText(Path.Combine(tmp.Path, "encoder.json"), vocab.ToJsonString(), Encoding.UTF8);
        File.WriteAllText(Path.Combine(tmp.Path, "vocab.bpe"), "a b\n", Encoding.UTF8);

        var hf = VocabMergesReader.Read(Path.Combine(tmp.Path, "vocab.json"), Path.Combine(tmp.Path, "merges.txt"), addPrefixSpace: false);
        Assert.Equal(257, hf.Vocab.Count);
        Assert.False(hf.UsePostProcessorDefaults);
        Assert.Empty(hf.Added);
        Assert.Empty(hf.DefaultSpecialTokens);

        var openAi = VocabMergesReader.ReadOpenAiGpt2(Path.Combine(tmp.Path, "encoder.json"), Path.Combine(tmp.Path, "vocab.bpe"), addPrefixSpace: false);
        Assert.Equal(Path.Combine(tmp.Path, "encoder.json"), openAi.Source);
        Assert.Equal(258, openAi.Vocab.Count);
        Assert.Equal([("bos_token", "<|endoftext|>"), ("eos_token", "<|endoftext|>"), ("unk_token", "<|endoftext|>")], openAi.DefaultSpecialTokens);
    }

    [Fact]
    public void SentencePieceModelReaderAddsControlTokensAndBos()
    {
        using var tmp = TestPaths.CreateTempDir();
        var path = Path.Combine(tmp.Path, "tokenizer.model");
        File.WriteAllBytes(path, SentencePieceModelWriter.Write(["<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "ab"]));

        var r = SentencePieceModelReader.Read(path);
        Assert.NotNull(r.Bpe);
        Assert.Null(r.SentencePiece);
        Assert.Equal(8, r.Vocab.Count);
        Assert.Equal([(0, "<unk>"), (1, "<s>"), (2, "</s>")], r.Added.Select(a => (a.Id, a.Content)));
        Assert.True(r.DefaultAddBos);
        Assert.False(r.UsePostProcessorDefaults);
        Assert.Equal([("bos_token", "<s>"), ("eos_token", "</s>"), ("unk_token", "<unk>")], r.DefaultSpecialTokens);
    }
}
