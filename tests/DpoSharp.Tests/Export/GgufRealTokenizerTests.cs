using DpoSharp.Export;
using DpoSharp.Tests.Tokenization;
using DpoSharp.Tokenization;
using Xunit.Abstractions;

namespace DpoSharp.Tests.Export;

/// <summary>
/// Published tokenizers (../shared: GPT-2's encoder.json + vocab.bpe, Phi-2's tokenizer.json with added whitespace
/// tokens, Llama-2's SentencePiece tokenizer.json) exported with a tiny model of their vocabulary size: llama.cpp loads
/// the file and tokenizes llama.cpp's own test strings into the ids its test vectors list, and into DpoSharp's ids.
/// </summary>
[Collection(LlamaCpp.Collection)]
public sealed class GgufRealTokenizerTests(ITestOutputHelper output)
{
    [SkippableTheory]
    [InlineData("gpt2-openai", "ggml-vocab-gpt-2.gguf", "gpt-2")]
    [InlineData("phi-2", null, "gpt-2")]
    [InlineData("llama-2", "ggml-vocab-llama-spm.gguf", null)]
    public void LlamaCppTokenizesTheExportedVocabularyAsTheTestVectors(string tokenizer, string? vectorFile, string? pre)
    {
        var src = TestPaths.SharedOrSkip(output, "data/tokenizers/" + tokenizer);
        var vectors = TestPaths.SharedOrSkip(output, "data/tokenizer-tests/llama.cpp");
        using var tmp = TestPaths.CreateTempDir();
        var dir = Path.Combine(tmp.Path, "model");
        Directory.CreateDirectory(dir);
        foreach (var file in Directory.GetFiles(src).Where(f => Path.GetFileName(f) != "LICENSE"))
        {
            File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        }

        var tok = HfTokenizer.Load(dir);
        TinyCheckpoints.Write(dir, "llama", vocabSize: tok.VocabSize, withTokenizer: false);
        var gguf = Path.Combine(tmp.Path, "model.gguf");
        GgufExporter.Export(dir, gguf, GgufOutType.F16);
        var f = GgufFile.Read(gguf);
        Assert.Equal(pre is null ? "llama" : "gpt2", f.Get<string>("tokenizer.ggml.model"));
        Assert.Equal(pre, f.Metadata.TryGetValue("tokenizer.ggml.pre", out var p) ? (string)p : null);
        Assert.Equal(tok.VocabSize, LlamaCpp.Vocabulary(gguf).Count);

        var cases = TokenizerConformanceTests.ReadVectors(vectors, vectorFile ?? "ggml-vocab-gpt-2.gguf");
        var tokenized = LlamaCpp.Tokenize(gguf, [.. cases.Select(c => c.Text)]);
        int count = 0;
        foreach (var ((text, ids), actual) in cases.Zip(tokenized))
        {
            if (vectorFile is not null)
            {
                Assert.True(ids.SequenceEqual(actual), $"'{text}': llama.cpp [{string.Join(",", actual)}], test vector [{string.Join(",", ids)}]");
            }

            var mine = tok.Encode(text);
            Assert.True(mine.SequenceEqual(actual), $"'{text}': llama.cpp [{string.Join(",", actual)}], DpoSharp [{string.Join(",", mine)}]");
            count++;
        }

        output.WriteLine($"{tokenizer}: {count} strings tokenized alike");
        Assert.True(count > 40);
    }
}
