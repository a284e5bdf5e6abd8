using System.Text;
using DpoSharp.Tokenization;
using Xunit.Abstractions;

namespace DpoSharp.Tests.Tokenization;

/// <summary>llama.cpp's published tokenizer vectors against the real tokenizer files, token for token.</summary>
public sealed class TokenizerConformanceTests(ITestOutputHelper output)
{
    private const string Separator = "\n__ggml_vocab_test__\n";

    /// <summary>Reads llama.cpp's <c>.inp</c>/<c>.out</c> pair: each string is written followed by the separator
    /// line; each output line holds the ids (no BOS) of one string, space-separated.</summary>
    internal static List<(string Text, int[] Ids)> ReadVectors(string dir, string name)
    {
        var inp = File.ReadAllText(Path.Combine(dir, name + ".inp"), Encoding.UTF8);
        var outLines = File.ReadAllText(Path.Combine(dir, name + ".out"), Encoding.UTF8).Split('\n');
        Assert.EndsWith(Separator, inp);
        var texts = inp[..^Separator.Length].Split(Separator);
        Assert.Equal(46, texts.Length);
        Assert.Equal(string.Empty, outLines[^1]);
        Assert.Equal(texts.Length, outLines.Length - 1);
        return texts.Select((t, i) => (t, outLines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray())).ToList();
    }

    private static void AssertAll(HfTokenizer tok, List<(string Text, int[] Ids)> vectors, ITestOutputHelper output)
    {
        var failures = new List<string>();
        foreach (var (text, ids) in vectors)
        {
            var got = tok.Encode(text);
            if (!got.SequenceEqual(ids))
            {
                failures.Add($"{Show(text)}: expected [{string.Join(' ', ids)}], got [{string.Join(' ', got)}]");
            }
        }

        foreach (var f in failures)
        {
            output.WriteLine(f);
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {vectors.Count} strings differ:\n" + string.Join('\n', failures));
    }

    private static string Show(string s) => "\"" + s.Replace("\n", "\\n", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal) + "\"";

    [SkippableFact]
    public void Gpt2OpenAiFilesMatchLlamaCppGpt2Vectors()
    {
        var vec = TestPaths.SharedOrSkip(output, "data/tokenizer-tests/llama.cpp");
        var dir = TestPaths.SharedOrSkip(output, "data/tokenizers/gpt2-openai");
        var tok = HfTokenizer.Load(dir);
        AssertAll(tok, ReadVectors(vec, "ggml-vocab-gpt-2.gguf"), output);
    }

    [SkippableFact]
    public void LlamaSentencePieceMatchesLlamaCppSpmVectors()
    {
        var vec = TestPaths.SharedOrSkip(output, "data/tokenizer-tests/llama.cpp");
        var dir = TestPaths.SharedOrSkip(output, "data/tokenizers/llama-2");
        var tok = HfTokenizer.Load(dir);
        AssertAll(tok, ReadVectors(vec, "ggml-vocab-llama-spm.gguf"), output);
    }

    [SkippableFact]
    public void Phi2BaseVocabularyMatchesLlamaCppGpt2Vectors()
    {
        var vec = TestPaths.SharedOrSkip(output, "data/tokenizer-tests/llama.cpp");
        var dir = TestPaths.SharedOrSkip(output, "data/tokenizers/phi-2");
        // Phi-2 is GPT-2's byte-level BPE plus added whitespace tokens: with added tokens spelled out as text
        // (EncodeOrdinary) every string tokenizes exactly as GPT-2's.
        var tok = HfTokenizer.Load(dir);
        var vectors = ReadVectors(vec, "ggml-vocab-gpt-2.gguf");
        var failures = vectors.Where(v => !tok.EncodeOrdinary(v.Text).SequenceEqual(v.Ids)).Select(v => Show(v.Text)).ToList();
        Assert.Empty(failures);
    }

    [SkippableFact]
    public void Phi2AddedWhitespaceTokensAreMatchedAtomically()
    {
        var vec = TestPaths.SharedOrSkip(output, "data/tokenizer-tests/llama.cpp");
        var phiDir = TestPaths.SharedOrSkip(output, "data/tokenizers/phi-2");
        var gptDir = TestPaths.SharedOrSkip(output, "data/tokenizers/gpt2-openai");
        var phi = HfTokenizer.Load(phiDir);
        var gpt2 = HfTokenizer.Load(gptDir);

        // Hugging Face's rule: added tokens (runs of 2-31 spaces = ids 50286..50257, runs of 2-9 tabs = ids
        // 50294..50287) are cut out of the text first (leftmost, longest), the rest is GPT-2 BPE.
        // Independent re-implementation of that split, with the ids from Phi-2's published added_tokens list.
        List<int> Expected(string text)
        {
            var ids = new List<int>();
            var sb = new StringBuilder();
            var i = 0;
            while (i < text.Length)
            {
                var c = text[i];
                var run = 0;
                while (i + run < text.Length && text[i + run] == c)
                {
                    run++;
                }

                var (max, baseId) = c == ' ' ? (31, 50288) : c == '\t' ? (9, 50296) : (0, 0);
                if (run >= 2 && max > 0)
                {
                    ids.AddRange(gpt2.Encode(sb.ToString()));
                    sb.Clear();
                    var left = run;
                    while (left >= 2)
                    {
                        var n = Math.Min(left, max);
                        ids.Add(baseId - n);
                        left -= n;
                    }

                    if (left == 1)
                    {
                        sb.Append(c);
                    }

                    i += run;
                    continue;
                }

                sb.Append(c);
                i++;
            }

            ids.AddRange(gpt2.Encode(sb.ToString()));
            return ids;
        }

        Assert.Equal(50286, phi.TokenToId("  "));
        Assert.Equal(50257, phi.TokenToId(new string(' ', 31)));
        Assert.Equal(50294, phi.TokenToId("\t\t"));
        Assert.Equal(50287, phi.TokenToId(new string('\t', 9)));
        var withRuns = 0;
        foreach (var (text, ids) in ReadVectors(vec, "ggml-vocab-gpt-2.gguf"))
        {
            var expected = Expected(text);
            if (!text.Contains("  ", StringComparison.Ordinal) && !text.Contains("\t\t", StringComparison.Ordinal))
            {
                Assert.Equal(ids, phi.Encode(text));
            }
            else
            {
                withRuns++;
            }

            Assert.Equal(expected, phi.Encode(text));
        }

        Assert.True(withRuns >= 5);
        Assert.Equal([50286, 15496], phi.Encode("  Hello"));
        Assert.Equal("  Hello", phi.Decode([50286, 15496, 50256], skipSpecialTokens: true)); // whitespace tokens are not special
        Assert.Equal(50256, phi.PadTokenId); // Phi-2 has no pad token: EOS
        Assert.False(phi.AddsBosToken);
    }
}
