using DpoSharp.IO;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using DpoSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Models.Lora;

/// <summary>Injecting, disabling, merging and removing LoRA adapters on every architecture.</summary>
public class LoraModelTests
{
    internal static Tensor Ids(int b = 2, int t = 11, long seed = 1)
    {
        var rng = new Random((int)seed);
        return tensor(Enumerable.Range(0, b * t).Select(_ => (long)rng.Next(TinyCheckpoints.DefaultVocabSize)).ToArray()).reshape(b, t); // (B, T)
    }

    /// <summary>Per-token log-probs (B, T, V) under no_grad.</summary>
    internal static Tensor LogProbs(ICausalLM model, Tensor ids)
    {
        using var _ = no_grad();
        using var logits = model.Forward(ids);      // (B, T, V)
        return nn.functional.log_softmax(logits, -1);
    }

    /// <summary>Gives every adapter a random B (≠ 0, A keeps its initial values), as training would.</summary>
    internal static void RandomizeAdapters(ICausalLM model, long seed, double std = 0.05)
    {
        using var _ = no_grad();
        using var gen = new Generator((ulong)seed);
        foreach (var t in model.Targets())
        {
            using var v = empty(t.Adapter.B.shape).normal_(0, std, gen);
            t.Adapter.B.copy_(v);
        }
    }

    private static string[] DefaultTargets(string type) => type switch
    {
        "gpt2" => ["transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn"],
        "phi" => [.. Enumerable.Range(0, 2).SelectMany(i => new[] { $"model.layers.{i}.self_attn.q_proj", $"model.layers.{i}.self_attn.v_proj", $"model.layers.{i}.mlp.fc1", $"model.layers.{i}.mlp.fc2" })],
        _ => [.. Enumerable.Range(0, 2).SelectMany(i => new[] { $"model.layers.{i}.self_attn.q_proj", $"model.layers.{i}.self_attn.v_proj" })],
    };

    [Theory]
    [AllModelTypes]
    public void InjectionFreezesTheBaseKeepsItsNamesAndChangesNothingUntilTrained(string type)
    {
        using var tmp = TestPaths.CreateTempDir();
        var dir = TinyCheckpoints.Write(tmp.Path, type, seed: 4, withTokenizer: false);
        using var model = ModelLoader.Load(dir);
        var baseNames = model.Module.state_dict().Keys.ToList();
        using var ids = Ids();
        using var plain = LogProbs(model, ids);

        var targets = model.Inject(new LoraOptions());
        Assert.Equal(DefaultTargets(type), targets.Select(t => t.Path));
        Assert.True(model.HasAdapters());
        Assert.True(model.AdaptersEnabled());

        // Base names unchanged; the adapters add <layer>.lora.lora_A / .lora_B, the only trainable parameters.
        var names = model.Module.state_dict().Keys.ToList();
        Assert.Equal(baseNames, names.Where(n => !LoraAdapter.IsAdapterParameter(n)));
        Assert.Equal(targets.SelectMany(t => new[] { t.Path + ".lora.lora_A", t.Path + ".lora.lora_B" }).Order(), names.Where(LoraAdapter.IsAdapterParameter).Order());
        foreach (var (name, p) in model.Module.named_parameters())
        {
            Assert.Equal(LoraAdapter.IsAdapterParameter(name), p.requires_grad);
        }

        var count = model.CountParameters();
        Assert.Equal(targets.Sum(t => 8 * (t.Layer.InFeatures + t.Layer.OutFeatures)), count.Trainable);
        Assert.Equal(ModelLoader.CountParameters(model), count.Total);
        Assert.InRange(count.TrainablePercent, 0.01, 50);

        // A fresh adapter (B = 0) is the identity, bit for bit; so is any adapter once disabled.
        using (var fresh = LogProbs(model, ids))
        {
            Assert.True(TensorBits.Identical(plain, fresh));
        }

        RandomizeAdapters(model, seed: 9);
        using (var adapted = LogProbs(model, ids))
        {
            Assert.False(adapted.allclose(plain, rtol: 1e-3, atol: 1e-3));
        }

        using (model.DisableAdapters())
        {
            Assert.False(model.AdaptersEnabled());
            using var disabled = LogProbs(model, ids);
            Assert.True(TensorBits.Identical(plain, disabled));
        }

        Assert.True(model.AdaptersEnabled());
        model.SetAdaptersEnabled(false);
        using (var disabled = LogProbs(model, ids))
        {
            Assert.True(TensorBits.Identical(plain, disabled));
        }

        // The base still loads from its checkpoint with adapters attached; a HF checkpoint cannot hold adapters.
        using (var ck = SafeTensorsCheckpoint.Open(dir))
        {
            ((CausalLMBase)model).LoadWeights(ck);
        }

        var e = Assert.Throws<DpoSharpException>(() => ModelSaver.Save(model, Path.Combine(tmp.Path, "out")));
        Assert.Contains("PeftAdapter.Save", e.Message);
        Assert.Throws<DpoSharpException>(() => model.Inject(new LoraOptions()));

        // Removing the adapters gives back the plain model: same names, all trainable, saves bit-exactly.
        model.RemoveAdapters();
        Assert.False(model.HasAdapters());
        Assert.Equal(baseNames, model.Module.state_dict().Keys);
        Assert.All(model.Module.parameters(), p => Assert.True(p.requires_grad));
        var saved = Path.Combine(tmp.Path, "saved");
        ModelSaver.Save(model, saved);
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "model.safetensors")), File.ReadAllBytes(Path.Combine(saved, "model.safetensors")));
    }

    [Theory]
    [AllModelTypes]
    public void MergedModelEqualsTheAdapterModelAndSavesAsAPlainCheckpoint(string type)
    {
        using var tmp = TestPaths.CreateTempDir();
        var dir = TinyCheckpoints.Write(tmp.Path, type, seed: 5, withTokenizer: false);
        using var model = ModelLoader.Load(dir);
        var targets = model.Inject(new LoraOptions { TargetModules = [LoraOptions.AllLinear], LoraAlpha = 8, R = 4 });
        Assert.DoesNotContain(targets, t => t.Path.Contains("lm_head", StringComparison.Ordinal));
        Assert.Equal(type switch { "gpt2" => 8, "phi" => 12, _ => 14 }, targets.Count);
        RandomizeAdapters(model, seed: 2);
        using var ids = Ids(seed: 3);
        using var adapted = LogProbs(model, ids);

        Assert.Equal(targets.Count, model.Merge());
        Assert.False(model.HasAdapters());
        using var merged = LogProbs(model, ids);
        double maxDiff = (merged - adapted).abs().max().item<float>();
        Assert.True(maxDiff <= 1e-5, $"{type}: merged vs adapter log-probs differ by {maxDiff}");

        var outDir = Path.Combine(tmp.Path, "merged");
        ModelSaver.Save(model, outDir);
        using var reloaded = ModelLoader.Load(outDir);
        using var back = LogProbs(reloaded, ids);
        Assert.True(TensorBits.Identical(merged, back));
        using var ck = SafeTensorsCheckpoint.Open(outDir);
        using var orig = SafeTensorsCheckpoint.Open(dir);
        Assert.Equal(orig.Names.Order(), ck.Names.Order());
    }

    [Fact]
    public void TargetModulesMatchNameSuffixesAndBadNamesAreExplained()
    {
        using var model = ModelLoader.Create(ModelConfig.Parse(TinyCheckpoints.Config("llama")), seed: 1);
        Assert.Equal(["model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"], model.Inject(new LoraOptions { TargetModules = ["mlp.down_proj"] }).Select(t => t.Path));
        model.RemoveAdapters();
        Assert.Equal(4, model.Inject(new LoraOptions { TargetModules = ["k_proj", "o_proj"] }).Count);
        model.RemoveAdapters();

        var e = Assert.Throws<DpoSharpException>(() => model.Inject(new LoraOptions { TargetModules = ["q_prj"] }));
        Assert.Contains("'q_prj'", e.Message);
        Assert.Contains("did you mean q_proj", e.Message);
        e = Assert.Throws<DpoSharpException>(() => model.Inject(new LoraOptions { TargetModules = ["input_layernorm"] }));
        Assert.Contains("not a linear layer", e.Message);
        e = Assert.Throws<DpoSharpException>(() => model.Inject(new LoraOptions { TargetModules = ["lm_head"] }));
        Assert.Contains("lm_head", e.Message);
        Assert.Throws<DpoSharpException>(() => model.Inject(new LoraOptions { TargetModules = ["all-linear", "q_proj"] }));
        Assert.Throws<DpoSharpException>(() => model.Inject(new LoraOptions { R = 0 }));
        Assert.Throws<DpoSharpException>(() => model.Inject(new LoraOptions { LoraAlpha = 0 }));
        Assert.Throws<DpoSharpException>(() => model.Inject(new LoraOptions { LoraDropout = 1 }));
        e = Assert.Throws<DpoSharpException>(() => model.Inject(new LoraOptions { Bias = "all" }));
        Assert.Contains("'all'", e.Message);
        Assert.False(model.HasAdapters());
        Assert.All(model.Module.parameters(), p => Assert.True(p.requires_grad));
    }

    [Fact]
    public void HalfPrecisionBasesGetFp32AdaptersAndModelsMoveWithTheirAdapters()
    {
        using var model = ModelLoader.Create(ModelConfig.Parse(TinyCheckpoints.Config("llama")), seed: 1, dtype: ScalarType.BFloat16);
        using var ids = Ids(t: 5);
        using var plain = LogProbs(model, ids);
        var targets = model.Inject(new LoraOptions());
        Assert.All(targets, t => Assert.Equal(ScalarType.Float32, t.Adapter.A.dtype));
        using (var fresh = LogProbs(model, ids))
        {
            Assert.True(TensorBits.Identical(plain, fresh));
        }

        RandomizeAdapters(model, seed: 1);
        using (var adapted = LogProbs(model, ids))
        {
            Assert.False(TensorBits.Identical(plain, adapted));
        }

        // Module.to replaces parameters: the layers' adapter fields follow, and training still reaches them.
        model.Module.to(ScalarType.Float64);
        Assert.All(model.Targets(), t => Assert.Equal(ScalarType.Float64, t.Adapter.B.dtype));
        Assert.Equal(
            model.Targets().SelectMany(t => new[] { t.Adapter.A, t.Adapter.B }).Select(p => p.Handle),
            model.Module.named_parameters().Where(p => LoraAdapter.IsAdapterParameter(p.name)).Select(p => p.parameter.Handle));
        using (var logits = model.Forward(ids))
        {
            logits.sum().backward();
        }

        Assert.All(model.Targets(), t => Assert.NotNull(t.Adapter.B.grad));
    }

    [Fact]
    public void AdaptersFollowTheModelsTrainingModeAndSeedDeterminesTheirStart()
    {
        using var a = ModelLoader.Create(ModelConfig.Parse(TinyCheckpoints.Config("qwen2")), seed: 1);
        using var b = ModelLoader.Create(ModelConfig.Parse(TinyCheckpoints.Config("qwen2")), seed: 1);
        a.Inject(new LoraOptions(), seed: 7);
        b.Inject(new LoraOptions(), seed: 7);
        Assert.All(a.Targets().Zip(b.Targets()), x => Assert.True(TensorBits.Identical(x.First.Adapter.A, x.Second.Adapter.A)));
        Assert.All(a.Targets(), t => Assert.False(t.Adapter.training)); // Create returns the model in eval mode
        a.Module.train();
        Assert.All(a.Targets(), t => Assert.True(t.Adapter.training));
        var o = a.Options()!;
        Assert.Equal(["q_proj", "v_proj"], o.TargetModules);
        Assert.Equal(8, o.R);
    }
}
