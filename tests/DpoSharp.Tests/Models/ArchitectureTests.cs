using System.Text.Json.Nodes;
using DpoSharp.Models;
using DpoSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Models;

public class ArchitectureTests
{
    /// <summary>Tiny model types plus variants: "llama3" = llama with llama3 rope_scaling and rope_theta 500,
    /// "gpt2-noprefix" = OpenAI-style keys without "transformer.", "llama-tied" = llama with tied embeddings.</summary>
    public static TheoryData<string> Types => new() { "gpt2", "llama", "mistral", "qwen2", "phi", "llama3", "gpt2-noprefix", "llama-tied" };

    internal static (string Dir, JsonObject Config) WriteVariant(string root, string variant, long seed = 7)
    {
        string type = variant switch { "llama3" or "llama-tied" => "llama", "gpt2-noprefix" => "gpt2", _ => variant };
        Action<JsonObject>? configure = variant switch
        {
            "llama3" => c =>
            {
                c["rope_theta"] = 500.0;
                c["rope_scaling"] = new JsonObject { ["rope_type"] = "llama3", ["factor"] = 4.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 16 };
            }
            ,
            "llama-tied" => c => c["tie_word_embeddings"] = true,
            _ => null,
        };
        var dir = TinyCheckpoints.Write(Path.Combine(root, variant), type, seed, configure: configure);
        if (variant == "gpt2-noprefix")
        {
            using (var ck = DpoSharp.IO.SafeTensorsCheckpoint.Open(dir))
            {
                var renamed = ck.Names.Select(n => (n.Replace("transformer.", "", StringComparison.Ordinal), ck.Read(n))).ToList();
                ck.Dispose();
                DpoSharp.IO.SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), renamed);
            }
        }

        return (dir, (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!);
    }

    internal static long[] RandomIds(int n, int seed, int vocab = TinyCheckpoints.DefaultVocabSize)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (long)rng.Next(vocab)).ToArray();
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void PaddedBatchLogitsMatchIndependentReimplementation(string variant)
    {
        using var tmp = TestPaths.CreateTempDir();
        var (dir, cfg) = WriteVariant(tmp.Path, variant);
        using var model = ModelLoader.Load(dir);
        var w = ReferenceLm.Weights(dir);
        var rows = new[] { RandomIds(12, 1), RandomIds(7, 2) };
        long t = rows.Max(r => r.Length);
        var ids = zeros(2, t, ScalarType.Int64);
        var mask = zeros(2, t, ScalarType.Int64);
        for (int r = 0; r < rows.Length; r++)
        {
            ids[r, ..rows[r].Length] = tensor(rows[r]);
            mask[r, ..rows[r].Length] = 1;
        }

        using var _ = no_grad();
        var logits = model.Forward(ids, mask);
        Assert.Equal(new long[] { 2, t, TinyCheckpoints.DefaultVocabSize }, logits.shape);
        Assert.Equal(ScalarType.Float32, logits.dtype);
        for (int r = 0; r < rows.Length; r++)
        {
            var expected = ReferenceLm.Logits(cfg, w, rows[r]);
            var actual = logits[r, ..rows[r].Length].to(ScalarType.Float64);
            double maxErr = (actual - expected).abs().max().item<double>();
            Assert.True(maxErr < 1e-4, $"{variant} row {r}: max |diff| {maxErr}");
            Assert.True(expected.std().item<double>() > 0.1, "reference logits are not trivially flat");
        }
    }

    [Theory]
    [AllModelTypes]
    public void ParametersFollowTransformersOrderEmbeddingLayersThenLmHead(string type)
    {
        using var tmp = TestPaths.CreateTempDir();
        var (dir, cfg) = WriteVariant(tmp.Path, type);
        using var model = ModelLoader.Load(dir);
        var names = model.Module.named_parameters().Select(p => p.name).ToList();
        Assert.Equal(type == "gpt2" ? "transformer.wte.weight" : "model.embed_tokens.weight", names[0]);
        string layers = type == "gpt2" ? "transformer.h." : "model.layers.";
        int firstLayer1 = names.FindIndex(n => n.StartsWith(layers + "1.", StringComparison.Ordinal));
        int lastLayer0 = names.FindLastIndex(n => n.StartsWith(layers + "0.", StringComparison.Ordinal));
        Assert.True(lastLayer0 >= 0 && lastLayer0 < firstLayer1, string.Join(", ", names));
        var head = names.Where(n => n.StartsWith("lm_head.", StringComparison.Ordinal)).ToList();
        if (cfg["tie_word_embeddings"]?.GetValue<bool>() == true)
        {
            Assert.Empty(head);
        }
        else
        {
            Assert.Equal(type == "phi" ? ["lm_head.weight", "lm_head.bias"] : ["lm_head.weight"], head);
            Assert.Equal(head, names[^head.Count..]);
        }
    }

    [Theory]
    [AllModelTypes]
    public void KvCacheDecodingMatchesFullForward(string type)
    {
        using var tmp = TestPaths.CreateTempDir();
        var (dir, _) = WriteVariant(tmp.Path, type);
        using var model = ModelLoader.Load(dir);
        var seq = RandomIds(12, 3);
        using var _ = no_grad();
        var full = model.Forward(tensor(seq).unsqueeze(0)); // (1, 12, V)
        using var cache = new KvCache(model.Config.NumLayers);
        var first = model.Forward(tensor(seq[..5]).unsqueeze(0), cache: cache);
        Assert.True((first - full[.., ..5]).abs().max().item<float>() < 1e-4);
        for (int i = 5; i < seq.Length; i++)
        {
            var step = model.Forward(tensor(new[] { seq[i] }).unsqueeze(0), cache: cache); // (1, 1, V)
            Assert.Equal(i + 1, cache.Length);
            Assert.True((step[0, 0] - full[0, i]).abs().max().item<float>() < 1e-4, $"{type} position {i}");
        }
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    [InlineData("phi")]
    public void LeftPaddingWithPositionIdsMatchesUnpadded(string type)
    {
        using var tmp = TestPaths.CreateTempDir();
        var (dir, _) = WriteVariant(tmp.Path, type);
        using var model = ModelLoader.Load(dir);
        var seq = RandomIds(6, 4);
        using var _ = no_grad();
        var plain = model.Forward(tensor(seq).unsqueeze(0));
        var ids = cat([zeros(1, 3, ScalarType.Int64), tensor(seq).unsqueeze(0)], 1);           // 3 pads on the left
        var mask = cat([zeros(1, 3, ScalarType.Int64), ones(1, 6, ScalarType.Int64)], 1);
        var pos = cat([zeros(1, 3, ScalarType.Int64), arange(6, ScalarType.Int64).unsqueeze(0)], 1);
        var padded = model.Forward(ids, mask, pos);
        Assert.False(padded.isnan().any().item<bool>());
        Assert.True((padded[.., 3..] - plain).abs().max().item<float>() < 1e-4);
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("phi")]
    public void GradientsReachEveryParameterAndMatchFiniteDifferences(string type)
    {
        using var tmp = TestPaths.CreateTempDir();
        var (dir, _) = WriteVariant(tmp.Path, type);
        using var model = ModelLoader.Load(dir);
        var ids = tensor(RandomIds(6, 8)).unsqueeze(0);
        var target = RandomIds(6, 9);
        Tensor Loss() => nn.functional.cross_entropy(model.Forward(ids)[0], tensor(target));
        Loss().backward();
        foreach (var (name, p) in model.Module.named_parameters())
        {
            Assert.True(p.grad is not null && p.grad.abs().sum().item<float>() > 0, $"{name} has no gradient");
        }

        // Central difference on one embedding weight vs autograd.
        var emb = model.Module.named_parameters().First(kv => kv.name.EndsWith("wte.weight", StringComparison.Ordinal) || kv.name.EndsWith("embed_tokens.weight", StringComparison.Ordinal)).parameter;
        long tok = ids[0, 2].item<long>();
        double analytic = emb.grad![tok, 3].item<float>();
        double h = 1e-2, plus, minus;
        using (no_grad())
        {
            emb[tok, 3] += h;
            plus = Loss().item<float>();
            emb[tok, 3] -= 2 * h;
            minus = Loss().item<float>();
            emb[tok, 3] += h;
        }

        Assert.True(Math.Abs(analytic) > 1e-3, $"gradient {analytic} too small to compare");
        Assert.True(Math.Abs(((plus - minus) / (2 * h)) - analytic) < 2e-3 + (0.02 * Math.Abs(analytic)), $"numeric {(plus - minus) / (2 * h)} vs autograd {analytic}");
    }

    [Fact]
    public void CopyIsDeepAndIndependent()
    {
        using var tmp = TestPaths.CreateTempDir();
        var (dir, _) = WriteVariant(tmp.Path, "qwen2");
        using var model = ModelLoader.Load(dir);
        using var copy = ModelLoader.Copy(model);
        var ids = tensor(RandomIds(5, 5)).unsqueeze(0);
        using var _ = no_grad();
        var before = model.Forward(ids);
        Assert.True(copy.Forward(ids).equal(before).all().item<bool>());
        foreach (var p in copy.Module.parameters())
        {
            p.add_(1.0);
        }

        Assert.True(model.Forward(ids).equal(before).all().item<bool>());
        Assert.False(copy.Forward(ids).equal(before).all().item<bool>());
    }

    [Fact]
    public void UnknownModelTypeListsSupportedOnes()
    {
        var cfg = TinyCheckpoints.Config("llama");
        cfg["model_type"] = "bloom";
        var e = Assert.Throws<DpoSharpException>(() => ModelConfig.Parse(cfg, "x/config.json"));
        Assert.Contains("bloom", e.Message);
        Assert.Contains("gpt2, llama, mistral, qwen2, phi", e.Message);
        Assert.Contains("x/config.json", e.Message);
    }
}
