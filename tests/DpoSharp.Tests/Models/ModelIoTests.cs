using System.Text.Json.Nodes;
using DpoSharp.IO;
using DpoSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Models;

public class ModelIoTests
{
    private static void AssertSameParameters(ICausalLM a, ICausalLM b)
    {
        var pa = a.Module.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        var pb = b.Module.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        Assert.Equal(pa.Keys.Order(), pb.Keys.Order());
        foreach (var (name, p) in pa)
        {
            Assert.True(p.equal(pb[name]).all().item<bool>(), name);
        }
    }

    private static HashSet<string> Keys(string dir)
    {
        using var ck = SafeTensorsCheckpoint.Open(dir);
        return ck.Names.ToHashSet();
    }

    [Fact]
    public void LoadRecordsTheSourceFolderAndCopyKeepsIt()
    {
        using var tmp = TestPaths.CreateTempDir();
        var src = TinyCheckpoints.Write(Path.Combine(tmp.Path, "src"), "llama", seed: 3);
        using var model = ModelLoader.Load(src);
        Assert.Equal(Path.GetFullPath(src), model.SourceDirectory);
        using var copy = ModelLoader.Copy(model);
        Assert.Equal(model.SourceDirectory, copy.SourceDirectory);
        using var built = ModelLoader.Create(model.Config);
        Assert.Null(built.SourceDirectory);
    }

    [Theory]
    [AllModelTypes]
    public void SaveThenLoadIsBitExactWithTransformersKeyLayout(string type)
    {
        using var tmp = TestPaths.CreateTempDir();
        var src = TinyCheckpoints.Write(Path.Combine(tmp.Path, "src"), type, seed: 3);
        File.WriteAllText(Path.Combine(src, "tokenizer.json"), "{\"marker\":1}");
        using var model = ModelLoader.Load(src);
        var dst = Path.Combine(tmp.Path, "dst");
        ModelSaver.Save(model, dst, copyTokenizerFrom: src);
        using var back = ModelLoader.Load(dst);
        AssertSameParameters(model, back);
        var ids = tensor(ArchitectureTests.RandomIds(9, 1)).unsqueeze(0);
        using (no_grad())
        {
            Assert.True(model.Forward(ids).equal(back.Forward(ids)).all().item<bool>());
        }

        var keys = Keys(dst);
        Assert.Equal(Keys(src), keys);
        Assert.Equal("{\"marker\":1}", File.ReadAllText(Path.Combine(dst, "tokenizer.json")));
        Assert.True(File.Exists(Path.Combine(dst, "generation_config.json")));
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(dst, "config.json")))!;
        Assert.Equal(type, cfg["model_type"]!.GetValue<string>());
        Assert.Equal("float32", cfg["torch_dtype"]!.GetValue<string>());
        switch (type)
        {
            case "gpt2": // transformers saves GPT2LMHeadModel with the transformer. prefix and no tied lm_head
                Assert.All(keys, k => Assert.StartsWith("transformer.", k));
                Assert.Contains("transformer.h.1.attn.c_attn.weight", keys);
                Assert.Equal(new long[] { 32, 96 }, SafeTensorsCheckpoint.Open(dst).Info("transformer.h.1.attn.c_attn.weight").Shape);
                break;
            case "qwen2": // tied: no lm_head.weight; q/k/v biases, no o_proj bias
                Assert.DoesNotContain("lm_head.weight", keys);
                Assert.Contains("model.layers.0.self_attn.q_proj.bias", keys);
                Assert.DoesNotContain("model.layers.0.self_attn.o_proj.bias", keys);
                break;
            case "phi":
                Assert.Contains("lm_head.bias", keys);
                Assert.Contains("model.final_layernorm.bias", keys);
                Assert.Contains("model.layers.1.self_attn.dense.weight", keys);
                Assert.Contains("model.layers.1.mlp.fc1.bias", keys);
                break;
            default:
                Assert.Contains("lm_head.weight", keys);
                Assert.Contains("model.layers.1.mlp.gate_proj.weight", keys);
                Assert.DoesNotContain("model.layers.0.self_attn.q_proj.bias", keys);
                break;
        }
    }

    [Fact]
    public void ShardedCheckpointLoadsEqualToUnsharded()
    {
        using var tmp = TestPaths.CreateTempDir();
        var single = TinyCheckpoints.Write(Path.Combine(tmp.Path, "single"), "llama", seed: 5);
        var sharded = TinyCheckpoints.Write(Path.Combine(tmp.Path, "sharded"), "llama", seed: 5, maxShardBytes: 40_000);
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(sharded, SafeTensorsCheckpoint.IndexFileName)))!;
        var shards = Directory.GetFiles(sharded, "model-*.safetensors");
        Assert.True(shards.Length >= 3, $"{shards.Length} shards");
        Assert.False(File.Exists(Path.Combine(sharded, "model.safetensors")));
        long total = 0;
        foreach (var s in shards)
        {
            using var f = SafeTensorsFile.Open(s);
            total += f.Tensors.Values.Sum(t => t.ByteLength);
            Assert.True(f.Tensors.Values.Sum(t => t.ByteLength) <= 40_000 || f.Tensors.Count == 1);
        }

        Assert.Equal(total, index["metadata"]!["total_size"]!.GetValue<long>());
        using var a = ModelLoader.Load(single);
        using var b = ModelLoader.Load(sharded);
        AssertSameParameters(a, b);
    }

    [Fact]
    public void Bf16CheckpointIsLoadedAsFp32()
    {
        using var tmp = TestPaths.CreateTempDir();
        var dir = TinyCheckpoints.Write(Path.Combine(tmp.Path, "m"), "phi", seed: 2);
        List<(string, Tensor)> bf16;
        using (var ck = SafeTensorsCheckpoint.Open(dir))
        {
            bf16 = ck.Names.Select(n => (n, ck.Read(n).to(ScalarType.BFloat16))).ToList();
        }

        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), bf16);
        using var model = ModelLoader.Load(dir);
        var p = model.Module.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        foreach (var (name, t) in bf16)
        {
            Assert.Equal(ScalarType.Float32, p[name].dtype);
            Assert.True(p[name].equal(t.to(ScalarType.Float32)).all().item<bool>(), name);
        }
    }

    [Fact]
    public void MismatchedWeightsGiveClearErrors()
    {
        using var tmp = TestPaths.CreateTempDir();
        var dir = TinyCheckpoints.Write(Path.Combine(tmp.Path, "m"), "llama");
        var cfgPath = Path.Combine(dir, "config.json");
        var original = File.ReadAllText(cfgPath);

        var cfg = JsonNode.Parse(original)!.AsObject();
        cfg["intermediate_size"] = 48;
        File.WriteAllText(cfgPath, cfg.ToJsonString());
        var e = Assert.Throws<DpoSharpException>(() => ModelLoader.Load(dir));
        Assert.Contains("mlp.gate_proj.weight", e.Message);
        Assert.Contains("[64, 32]", e.Message);

        cfg = JsonNode.Parse(original)!.AsObject();
        cfg["num_hidden_layers"] = 3;
        File.WriteAllText(cfgPath, cfg.ToJsonString());
        e = Assert.Throws<DpoSharpException>(() => ModelLoader.Load(dir));
        Assert.Contains("model.layers.2.", e.Message);

        cfg = JsonNode.Parse(original)!.AsObject();
        cfg["num_hidden_layers"] = 1;
        File.WriteAllText(cfgPath, cfg.ToJsonString());
        e = Assert.Throws<DpoSharpException>(() => ModelLoader.Load(dir));
        Assert.Contains("does not use", e.Message);

        File.WriteAllText(cfgPath, "{ not json");
        Assert.Contains("config.json", Assert.Throws<DpoSharpException>(() => ModelLoader.Load(dir)).Message);
        Assert.Contains("not found", Assert.Throws<DpoSharpException>(() => ModelLoader.Load(Path.Combine(tmp.Path, "nope"))).Message);
    }

    [Fact]
    public void CreateIsDeterministicPerSeedWithHfInit()
    {
        var cfg = ModelConfig.Parse(TinyCheckpoints.Config("phi"));
        using var a = ModelLoader.Create(cfg, seed: 1);
        using var b = ModelLoader.Create(cfg, seed: 1);
        using var c = ModelLoader.Create(cfg, seed: 2);
        AssertSameParameters(a, b);
        var p = a.Module.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        Assert.False(p["model.embed_tokens.weight"].equal(c.Module.named_parameters().First(kv => kv.name == "model.embed_tokens.weight").parameter).all().item<bool>());
        double std = p["model.layers.0.mlp.fc1.weight"].std().item<float>();
        Assert.InRange(std, 0.018, 0.022);
        Assert.Equal(0f, p["model.layers.0.mlp.fc1.bias"].abs().max().item<float>());
        Assert.Equal(1f, p["model.final_layernorm.weight"].min().item<float>());
    }

    /// <summary>
    /// Parameter counts of the presets, built on the meta device (nothing allocated). Expected numbers are derived
    /// from each published config.json:
    /// gpt2 124,439,808 (published); phi-2 2,779,683,840; qwen2.5-0.5b 494,032,768 (tied); llama-3.2-1b 1,235,814,400
    /// (tied); tinyllama-1.1b 1,100,048,384.
    /// </summary>
    [Theory]
    [InlineData("gpt2", 124_439_808L)]
    [InlineData("phi-2", 2_779_683_840L)]
    [InlineData("qwen2.5-0.5b", 494_032_768L)]
    [InlineData("llama-3.2-1b", 1_235_814_400L)]
    [InlineData("tinyllama-1.1b", 1_100_048_384L)]
    public void PresetsHavePublishedParameterCounts(string preset, long expected)
    {
        var cfg = ModelPresets.Get(preset);
        using var model = ModelLoader.Build(cfg, new Device(DeviceType.META));
        Assert.Equal(expected, ModelLoader.CountParameters(model));
        Assert.Equal(DeviceType.META, model.Device.type);
        Assert.Equal(expected, AnalyticCount(cfg));
    }

    /// <summary>The same count from the formulas (embeddings + per-layer weights + final norm + untied head).</summary>
    private static long AnalyticCount(ModelConfig c)
    {
        long d = c.HiddenSize, v = c.VocabSize, f = c.IntermediateSize, L = c.NumLayers;
        long kv = (long)c.NumKvHeads * c.HeadDim, q = (long)c.NumHeads * c.HeadDim;
        return c.ModelType switch
        {
            "gpt2" => (v * d) + (c.MaxPositionEmbeddings * d) + (L * ((4 * d) + (d * 3 * d) + (3 * d) + (d * d) + d + (d * f) + f + (f * d) + d)) + (2 * d),
            "phi" => (v * d) + (L * ((2 * d) + (d * q) + q + (2 * ((d * kv) + kv)) + (q * d) + d + (d * f) + f + (f * d) + d)) + (2 * d) + (v * d) + v,
            _ => (v * d) + (L * ((2 * d) + (d * q) + (2 * d * kv) + (q * d) + (3 * d * f) + (c.AttentionBias ? q + (2 * kv) : 0))) + d + (c.TieWordEmbeddings ? 0 : v * d),
        };
    }
}
