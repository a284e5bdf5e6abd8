using DpoSharp.Cli;
using DpoSharp.Generation;
using DpoSharp.Models;
using DpoSharp.Tests.Models;
using DpoSharp.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Generation;

public class GenerationTests
{
    private static int[] Prompt => [5, 17, 200, 33, 90];

    /// <summary>Greedy decoding without a cache: a full forward over the whole sequence per step, then argmax.</summary>
    private static List<int> NaiveGreedy(ICausalLM model, int[] prompt, int steps)
    {
        var seq = prompt.ToList();
        using var _ = no_grad();
        for (int i = 0; i < steps; i++)
        {
            var logits = model.Forward(tensor(seq.Select(x => (long)x).ToArray()).unsqueeze(0));
            seq.Add((int)logits[0, -1].argmax().item<long>());
        }

        return seq.Skip(prompt.Length).ToList();
    }

    [Theory]
    [AllModelTypes]
    public void GreedyWithKvCacheMatchesNaiveGreedy(string type)
    {
        using var tmp = TestPaths.CreateTempDir();
        var (dir, _) = ArchitectureTests.WriteVariant(tmp.Path, type);
        using var model = ModelLoader.Load(dir);
        var got = TextGenerator.Generate(model, Prompt, new GenerationOptions { MaxNewTokens = 10, StopTokenIds = [] });
        Assert.Equal(NaiveGreedy(model, Prompt, 10), got);
    }

    [Fact]
    public void SamplingIsSeededAndTopKKeepsOnlyTheKMostLikely()
    {
        using var tmp = TestPaths.CreateTempDir();
        var (dir, _) = ArchitectureTests.WriteVariant(tmp.Path, "llama");
        using var model = ModelLoader.Load(dir);
        var opts = new GenerationOptions { MaxNewTokens = 20, Temperature = 2.0, TopK = 3, Seed = 42, StopTokenIds = [] };
        var a = TextGenerator.Generate(model, Prompt, opts);
        var b = TextGenerator.Generate(model, Prompt, opts);
        var c = TextGenerator.Generate(model, Prompt, new GenerationOptions { MaxNewTokens = 20, Temperature = 2.0, TopK = 3, Seed = 43, StopTokenIds = [] });
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.NotEqual(NaiveGreedy(model, Prompt, 20), a); // really sampled

        // Every sampled token is among the 3 most likely at its step (checked with full forwards).
        var seq = Prompt.ToList();
        using var _ = no_grad();
        foreach (var tok in a)
        {
            var logits = model.Forward(tensor(seq.Select(x => (long)x).ToArray()).unsqueeze(0))[0, -1];
            var top3 = logits.topk(3).indexes.data<long>().ToArray();
            Assert.Contains((long)tok, top3);
            seq.Add(tok);
        }
    }

    [Fact]
    public void TinyTopPOrTopK1EqualsGreedy()
    {
        using var tmp = TestPaths.CreateTempDir();
        var (dir, _) = ArchitectureTests.WriteVariant(tmp.Path, "phi");
        using var model = ModelLoader.Load(dir);
        var greedy = NaiveGreedy(model, Prompt, 8);
        Assert.Equal(greedy, TextGenerator.Generate(model, Prompt, new GenerationOptions { MaxNewTokens = 8, Temperature = 1.0, TopP = 1e-6, StopTokenIds = [] }));
        Assert.Equal(greedy, TextGenerator.Generate(model, Prompt, new GenerationOptions { MaxNewTokens = 8, Temperature = 1.0, TopK = 1, StopTokenIds = [] }));
    }

    [Fact]
    public void TopPSamplesOnlyFromTheNucleus()
    {
        // p = [0.5, 0.3, 0.15, 0.05]: the smallest set reaching 0.7 is {0, 1}; top-k 3 excludes token 3.
        var logits = tensor(new[] { 0.5f, 0.3f, 0.15f, 0.05f }).log();
        using var gen = new Generator(7);
        var nucleus = Enumerable.Range(0, 300).Select(_ => TextGenerator.Sample(logits, new GenerationOptions { Temperature = 1.0, TopP = 0.7 }, gen)).ToList();
        Assert.All(nucleus, t => Assert.InRange(t, 0, 1));
        Assert.Contains(0, nucleus);
        Assert.Contains(1, nucleus);
        var topk = Enumerable.Range(0, 300).Select(_ => TextGenerator.Sample(logits, new GenerationOptions { Temperature = 1.0, TopK = 3 }, gen)).ToList();
        Assert.DoesNotContain(3, topk);
        Assert.Contains(2, topk);
        double share0 = nucleus.Count(t => t == 0) / 300.0;
        Assert.InRange(share0, 0.5, 0.75); // renormalised 0.5/0.8 = 0.625
    }

    [Fact]
    public void StopsAfterAStopToken()
    {
        using var tmp = TestPaths.CreateTempDir();
        var (dir, _) = ArchitectureTests.WriteVariant(tmp.Path, "gpt2");
        using var model = ModelLoader.Load(dir);
        var greedy = NaiveGreedy(model, Prompt, 10);
        int stopAt = Enumerable.Range(0, greedy.Count).First(i => greedy.IndexOf(greedy[i]) == i && i >= 2);
        var got = TextGenerator.Generate(model, Prompt, new GenerationOptions { MaxNewTokens = 10, StopTokenIds = [greedy[stopAt]] });
        Assert.Equal(greedy.Take(stopAt + 1), got);
    }

    [Theory]
    [InlineData(0, 0.0, 0, 1.0, "--max-new-tokens")]
    [InlineData(5, -1.0, 0, 1.0, "--temperature")]
    [InlineData(5, 1.0, -2, 1.0, "--top-k")]
    [InlineData(5, 1.0, 0, 0.0, "--top-p")]
    [InlineData(5, 1.0, 0, 1.5, "--top-p")]
    public void InvalidOptionsAreRejected(int maxNew, double temperature, int topK, double topP, string expected)
    {
        var o = new GenerationOptions { MaxNewTokens = maxNew, Temperature = temperature, TopK = topK, TopP = topP };
        Assert.Contains(expected, Assert.Throws<DpoSharpException>(o.Validate).Message);
    }

    [Theory]
    [AllModelTypes]
    public void GenerateCommandPrintsTheDecodedGreedyContinuation(string type)
    {
        using var tmp = TestPaths.CreateTempDir();
        var dir = TinyCheckpoints.Write(Path.Combine(tmp.Path, "m"), type, seed: 9);
        var output = new StringWriter();
        var err = new StringWriter();
        int rc = DpoSharpCli.Run(["generate", "--model", dir, "--prompt", "Hello there", "--max-new-tokens", "6"], output, err);
        Assert.True(rc == 0, err.ToString());

        var tokenizer = HfTokenizer.Load(dir);
        var ids = tokenizer.Encode("Hello there", addSpecialTokens: true);
        Assert.Equal("Hello there".Length, ids.Count); // byte-level without merges: one token per byte
        using var model = ModelLoader.Load(dir);
        var expected = NaiveGreedy(model, ids.ToArray(), 6);
        int eos = expected.IndexOf(TinyCheckpoints.EosTokenId);
        if (eos >= 0)
        {
            expected = expected.Take(eos + 1).ToList();
        }

        Assert.Equal(tokenizer.Decode(expected.Where(t => t < tokenizer.VocabSize), skipSpecialTokens: true) + Environment.NewLine, output.ToString());
        Assert.Contains("new tokens", err.ToString());

        var sampled = new StringWriter();
        var sampledErr = new StringWriter();
        rc = DpoSharpCli.Run(["generate", "--model", dir, "--prompt", "Hi", "--temperature", "0.8", "--top-k", "5", "--top-p", "0.9", "--seed", "3"], sampled, sampledErr);
        Assert.True(rc == 0, sampledErr.ToString());
    }

    [Fact]
    public void GenerateCommandRejectsBadOptions()
    {
        using var tmp = TestPaths.CreateTempDir();
        var dir = TinyCheckpoints.Write(Path.Combine(tmp.Path, "m"), "gpt2");
        var err = new StringWriter();
        Assert.Equal(2, DpoSharpCli.Run(["generate", "--model", dir, "--prompt", "x", "--top-p", "2"], new StringWriter(), err));
        Assert.Contains("--top-p", err.ToString());
        err = new StringWriter();
        Assert.Equal(2, DpoSharpCli.Run(["generate", "--model", Path.Combine(tmp.Path, "missing"), "--prompt", "x"], new StringWriter(), err));
        Assert.Contains("missing", err.ToString());
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void GenerateWithAnAdapterEqualsGeneratingWithTheMergedModel(string type)
    {
        using var tmp = TestPaths.CreateTempDir();
        var (baseDir, adapterDir) = TinyAdapters.Write(tmp.Path, type);
        var merged = Path.Combine(tmp.Path, "merged");
        Assert.Equal(0, CliRunner.Run("merge", "--model", baseDir, "--adapter", adapterDir, "--output-dir", merged).Rc);
        string Generate(params string[] model)
        {
            var (rc, output, err) = CliRunner.Run(["generate", .. model, "--prompt", "Hello there", "--max-new-tokens", "8"]);
            Assert.True(rc == 0, err);
            return output;
        }

        var withAdapter = Generate("--model", baseDir, "--adapter", adapterDir);
        Assert.Equal(Generate("--model", merged), withAdapter);
        Assert.NotEqual(Generate("--model", baseDir), withAdapter);

        // The continuation is the greedy one of the base with the adapter loaded (token by token, no cache).
        var tokenizer = HfTokenizer.Load(baseDir);
        using var model = TinyAdapters.LoadWithAdapter(baseDir, adapterDir);
        var expected = NaiveGreedy(model, [.. tokenizer.Encode("Hello there", addSpecialTokens: true)], 8);
        int eos = expected.IndexOf(TinyCheckpoints.EosTokenId);
        expected = eos >= 0 ? expected.Take(eos + 1).ToList() : expected;
        Assert.Equal(tokenizer.Decode(expected.Where(t => t < tokenizer.VocabSize), skipSpecialTokens: true) + Environment.NewLine, withAdapter);

        var missing = Path.Combine(tmp.Path, "no-adapter");
        var (code, _, message) = CliRunner.Run("generate", "--model", baseDir, "--adapter", missing, "--prompt", "x");
        Assert.Equal(2, code);
        Assert.Contains(missing, message);
    }
}
