using System.Text.Json.Nodes;
using DpoSharp.IO;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Models.Lora;

/// <summary><see cref="LoraMerge.MergeToCheckpoint"/>: the dtype and sharding of the written checkpoint.</summary>
public class LoraMergeTests
{
    [Fact]
    public void ABf16BaseGivesABf16CheckpointOfTheFp32MergeRoundedOnce()
    {
        using var tmp = TestPaths.CreateTempDir();
        var (fp32Base, adapterDir) = TinyAdapters.Write(tmp.Path, "llama");
        var bf16Base = Path.Combine(tmp.Path, "base-bf16");
        using (var m = ModelLoader.Load(fp32Base, dtype: ScalarType.BFloat16))
        {
            ModelSaver.Save(m, bf16Base, copyTokenizerFrom: fp32Base);
        }

        var outDir = Path.Combine(tmp.Path, "merged");
        var result = LoraMerge.MergeToCheckpoint(bf16Base, adapterDir, outDir);
        Assert.Equal(ScalarType.BFloat16, result.DType);
        Assert.Equal(14, result.MergedLayers);
        Assert.Equal(Path.GetFullPath(outDir), result.OutputDirectory);
        Assert.Equal("bfloat16", JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!["torch_dtype"]!.GetValue<string>());

        using var merged = SafeTensorsCheckpoint.Open(outDir);
        using var original = SafeTensorsCheckpoint.Open(bf16Base);
        Assert.All(merged.Names, n => Assert.Equal(ScalarType.BFloat16, merged.Info(n).ScalarType));

        // W (bf16) + (alpha / r)·B·A in float64, rounded once to bf16: the same bf16 values, except where the fp32
        // sum lies within fp32 noise of a rounding boundary (one bf16 step, 2^-7 relative, at most).
        const string layer = "model.layers.0.mlp.down_proj";
        using var adapterFile = SafeTensorsFile.Open(Path.Combine(adapterDir, PeftAdapter.WeightsFileName));
        using var a = adapterFile.Read(PeftAdapter.WeightKey(layer, b: false)).to(ScalarType.Float64);   // (r, in)
        using var b = adapterFile.Read(PeftAdapter.WeightKey(layer, b: true)).to(ScalarType.Float64);    // (out, r)
        using var w = original.Read(layer + ".weight").to(ScalarType.Float64);                           // (out, in)
        using var expected = w + (b.matmul(a) * 2.0);
        using var rounded = expected.to(ScalarType.BFloat16).to(ScalarType.Float64);
        using var actual = merged.Read(layer + ".weight").to(ScalarType.Float64);
        long differ = actual.ne(rounded).sum().item<long>();
        Assert.True(differ <= expected.numel() / 100, $"{differ} of {expected.numel()} weights are not W + scaling·B·A rounded to bf16");
        using var excess = (actual - expected).abs() - (expected.abs() * Math.Pow(2, -7));
        Assert.True(excess.max().item<double>() <= 0, "a weight is more than a bf16 step from W + scaling·B·A");
        using var unmerged = (w - expected).abs().max();
        Assert.True(unmerged.item<double>() > 0.01, "the adapter must change the weight");
    }

    [Fact]
    public void ShardedOutputLoadsAsTheSameModel()
    {
        using var tmp = TestPaths.CreateTempDir();
        var (baseDir, adapterDir) = TinyAdapters.Write(tmp.Path, "gpt2");
        var single = LoraMerge.MergeToCheckpoint(baseDir, adapterDir, Path.Combine(tmp.Path, "single")).OutputDirectory;
        var sharded = LoraMerge.MergeToCheckpoint(baseDir, adapterDir, Path.Combine(tmp.Path, "sharded"), maxShardBytes: 20_000).OutputDirectory;
        Assert.True(File.Exists(Path.Combine(sharded, SafeTensorsCheckpoint.IndexFileName)));
        Assert.False(File.Exists(Path.Combine(sharded, SafeTensorsCheckpoint.SingleFileName)));
        Assert.True(Directory.GetFiles(sharded, "model-*-of-*.safetensors").Length > 1);
        Assert.True(File.Exists(Path.Combine(sharded, "tokenizer.json")));

        using var one = ModelLoader.Load(single);
        using var many = ModelLoader.Load(sharded);
        using var ids = LoraModelTests.Ids(seed: 2);
        using var x = LoraModelTests.LogProbs(one, ids);
        using var y = LoraModelTests.LogProbs(many, ids);
        Assert.True(TensorBits.Identical(x, y));
    }
}
