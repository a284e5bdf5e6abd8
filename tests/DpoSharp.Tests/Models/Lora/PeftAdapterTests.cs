using System.Text.Json.Nodes;
using DpoSharp.IO;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Models.Lora;

/// <summary>PEFT's adapter_config.json + adapter_model.safetensors: names, shapes, round trip and bad files.</summary>
public class PeftAdapterTests
{
    /// <summary>A tiny base checkpoint and a model on it with trained-looking adapters saved in <c>adapter/</c>.</summary>
    private static (string Base, string Adapter) WriteAdapter(string root, string type, LoraOptions? options = null)
    {
        var baseDir = TinyCheckpoints.Write(Path.Combine(root, "base"), type, seed: 6, withTokenizer: false);
        using var model = ModelLoader.Load(baseDir);
        model.Inject(options ?? new LoraOptions { BaseModelNameOrPath = "tiny/" + type });
        LoraModelTests.RandomizeAdapters(model, seed: 4);
        var adapterDir = Path.Combine(root, "adapter");
        PeftAdapter.Save(model, adapterDir);
        return (baseDir, adapterDir);
    }

    [Theory]
    [AllModelTypes]
    public void SavedAdapterHasPeftNamesAndShapesAndRoundTrips(string type)
    {
        using var tmp = TestPaths.CreateTempDir();
        var baseDir = TinyCheckpoints.Write(Path.Combine(tmp.Path, "base"), type, seed: 6, withTokenizer: false);
        using var model = ModelLoader.Load(baseDir);
        var targets = model.Inject(new LoraOptions { TargetModules = [LoraOptions.AllLinear], R = 4, LoraAlpha = 8, LoraDropout = 0.1, BaseModelNameOrPath = "tiny/" + type });
        LoraModelTests.RandomizeAdapters(model, seed: 4);
        var dir = Path.Combine(tmp.Path, "adapter");
        PeftAdapter.Save(model, dir);
        Assert.Equal([PeftAdapter.ConfigFileName, PeftAdapter.WeightsFileName], Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, PeftAdapter.ConfigFileName)))!.AsObject();
        Assert.Equal("LORA", config["peft_type"]!.GetValue<string>());
        Assert.Equal("CAUSAL_LM", config["task_type"]!.GetValue<string>());
        Assert.Equal(4, config["r"]!.GetValue<int>());
        Assert.Equal(8, config["lora_alpha"]!.GetValue<int>());
        Assert.Equal(0.1, config["lora_dropout"]!.GetValue<double>());
        Assert.Equal("none", config["bias"]!.GetValue<string>());
        Assert.Equal("tiny/" + type, config["base_model_name_or_path"]!.GetValue<string>());
        Assert.Equal(type == "gpt2", config["fan_in_fan_out"]!.GetValue<bool>());
        Assert.False(config["use_dora"]!.GetValue<bool>());
        Assert.False(config["use_rslora"]!.GetValue<bool>());
        var expectedNames = type switch
        {
            "gpt2" => new[] { "c_attn", "c_fc", "c_proj" },
            "phi" => ["dense", "fc1", "fc2", "k_proj", "q_proj", "v_proj"],
            _ => ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"],
        };
        Assert.Equal(expectedNames, config["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()));

        using (var file = SafeTensorsFile.Open(Path.Combine(dir, PeftAdapter.WeightsFileName)))
        {
            Assert.Equal(2 * targets.Count, file.Tensors.Count);
            foreach (var t in targets)
            {
                Assert.Equal([4L, t.Layer.InFeatures], file.Tensors[$"base_model.model.{t.Path}.lora_A.weight"].Shape);
                Assert.Equal([t.Layer.OutFeatures, 4L], file.Tensors[$"base_model.model.{t.Path}.lora_B.weight"].Shape);
            }

            var first = type switch
            {
                "gpt2" => "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
                "phi" => "base_model.model.model.layers.0.self_attn.dense.lora_B.weight",
                _ => "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
            };
            Assert.Contains(first, file.Tensors.Keys);
            if (type == "gpt2")
            {
                // Conv1D stores (in, out) = (32, 96); PEFT's lora_B is still out × r.
                Assert.Equal([96L, 4], file.Tensors["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"].Shape);
            }
        }

        // Into a fresh base model: the same adapters, bit for bit, and the same outputs; settings from the config.
        using var fresh = ModelLoader.Load(baseDir);
        var loaded = PeftAdapter.Load(fresh, dir);
        Assert.Equal(targets.Select(t => t.Path), loaded.Select(t => t.Path));
        foreach (var (a, b) in targets.Zip(loaded))
        {
            Assert.True(TensorBits.Identical(a.Adapter.A, b.Adapter.A));
            Assert.True(TensorBits.Identical(a.Adapter.B, b.Adapter.B));
            Assert.Equal(2.0, b.Adapter.Scaling);
            Assert.Equal(0.1, b.Adapter.DropoutProbability);
        }

        Assert.All(fresh.Module.named_parameters(), p => Assert.Equal(p.name.Contains(".lora.", StringComparison.Ordinal), p.parameter.requires_grad));
        using var ids = LoraModelTests.Ids();
        using var expected = LoraModelTests.LogProbs(model, ids);
        using var actual = LoraModelTests.LogProbs(fresh, ids);
        Assert.True(TensorBits.Identical(expected, actual));

        // Saving the loaded adapter writes the same bytes.
        var again = Path.Combine(tmp.Path, "again");
        PeftAdapter.Save(fresh, again);
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, PeftAdapter.WeightsFileName)), File.ReadAllBytes(Path.Combine(again, PeftAdapter.WeightsFileName)));
        Assert.Equal(File.ReadAllText(Path.Combine(dir, PeftAdapter.ConfigFileName)), File.ReadAllText(Path.Combine(again, PeftAdapter.ConfigFileName)));
    }

    [Fact]
    public void AHandWrittenPeftAdapterLoadsWithItsScaling()
    {
        // What PEFT writes for r 2, alpha 6 on q_proj of layer 1 only (PEFT's minimal config; keys with and without
        // the adapter name).
        using var tmp = TestPaths.CreateTempDir();
        var baseDir = TinyCheckpoints.Write(Path.Combine(tmp.Path, "base"), "llama", seed: 2, withTokenizer: false);
        var dir = Directory.CreateDirectory(Path.Combine(tmp.Path, "peft")).FullName;
        File.WriteAllText(Path.Combine(dir, PeftAdapter.ConfigFileName), """{"peft_type": "LORA", "r": 2, "lora_alpha": 6, "target_modules": ["q_proj"], "task_type": "CAUSAL_LM"}""");
        using var a = arange(2 * 32, dtype: ScalarType.Float32).reshape(2, 32) / 100;   // (r, in)
        using var b = arange(32 * 2, dtype: ScalarType.Float32).reshape(32, 2) / -50;   // (out, r)
        SafeTensorsWriter.Write(Path.Combine(dir, PeftAdapter.WeightsFileName), [
            ("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight", a),
            ("base_model.model.model.layers.1.self_attn.q_proj.lora_B.default.weight", b),
        ]);

        using var model = ModelLoader.Load(baseDir);
        var t = Assert.Single(PeftAdapter.Load(model, dir));
        Assert.Equal("model.layers.1.self_attn.q_proj", t.Path);
        Assert.Equal(3.0, t.Adapter.Scaling);
        Assert.Equal(0.0, t.Adapter.DropoutProbability);
        Assert.True(TensorBits.Identical(a, t.Adapter.A));
        Assert.True(TensorBits.Identical(b, t.Adapter.B));

        using var merged = ModelLoader.Load(baseDir);
        var q = (DpoSharp.Modules.Linear)merged.Module.named_modules().First(m => m.name == "model.layers.1.self_attn.q_proj").module;
        using (no_grad())
        {
            q.Weight.add_(matmul(b, a) * 3.0);
        }

        using var ids = LoraModelTests.Ids();
        using var x = LoraModelTests.LogProbs(model, ids);
        using var y = LoraModelTests.LogProbs(merged, ids);
        Assert.True(x.allclose(y, rtol: 0, atol: 1e-5));
    }

    public static TheoryData<string, Action<string>, string> BadAdapters => new()
    {
        { "no config", d => File.Delete(Path.Combine(d, PeftAdapter.ConfigFileName)), "not a PEFT adapter directory" },
        { "not json", d => File.WriteAllText(Path.Combine(d, PeftAdapter.ConfigFileName), "{r: 8"), "adapter_config.json: invalid JSON at line 1" },
        { "other peft type", d => EditConfig(d, c => c["peft_type"] = "PREFIX_TUNING"), "peft_type is 'PREFIX_TUNING'" },
        { "dora", d => EditConfig(d, c => c["use_dora"] = true), "use_dora is true" },
        { "rank pattern", d => EditConfig(d, c => c["rank_pattern"] = new JsonObject { ["q_proj"] = 4 }), "rank_pattern is not empty" },
        { "bias", d => EditConfig(d, c => c["bias"] = "lora_only"), "adapter_config.json: lora bias 'lora_only' is not supported" },
        { "r type", d => EditConfig(d, c => c["r"] = "eight"), "adapter_config.json: a field has the wrong type" },
        { "r mismatch", d => EditConfig(d, c => c["r"] = 4), "'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' has shape [8, 32], but lora_A of model.layers.0.self_attn.q_proj must be r × in = 4 × 32" },
        { "no weights", d => File.Delete(Path.Combine(d, PeftAdapter.WeightsFileName)), "adapter_model.safetensors is missing" },
        { "extra key", d => EditWeights(d, w => w.Add(("base_model.model.model.layers.0.self_attn.q_proj.lora_A.bias", zeros(8)))), "tensor 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.bias' is not a LoRA weight" },
        { "unknown module", d => EditWeights(d, w => Rename(w, "model.layers.0.self_attn.q_proj", "model.layers.7.self_attn.q_proj")), "'model.layers.7.self_attn.q_proj', which is not a linear layer of this llama model" },
        { "lm_head", d => EditWeights(d, w => Rename(w, "model.layers.0.self_attn.q_proj", "lm_head")), "adapts 'lm_head', which is not a linear layer" },
        { "missing B", d => EditWeights(d, w => w.RemoveAll(x => x.Name == "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight")), "'base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight' has no matching 'base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight'" },
        { "wrong shape", d => EditWeights(d, w => Replace(w, "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight", zeros(32, 8))), "'base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight' has shape [32, 8], but lora_B of model.layers.0.self_attn.v_proj must be out × r = 16 × 8" },
        { "nan", d => EditWeights(d, w => Replace(w, "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight", full(16, 8, float.NaN))), "hold NaN or infinite values, e.g. base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight" },
    };

    [Theory]
    [MemberData(nameof(BadAdapters))]
    public void BadAdapterFilesAreRejectedWithTheFileAndKey(string what, Action<string> spoil, string message)
    {
        using var tmp = TestPaths.CreateTempDir();
        var (baseDir, dir) = WriteAdapter(tmp.Path, "llama");
        spoil(dir);
        using var model = ModelLoader.Load(baseDir);
        var e = Assert.Throws<DpoSharpException>(() => PeftAdapter.Load(model, dir));
        Assert.True(e.Message.Contains(message, StringComparison.Ordinal), $"{what}: {e.Message}");
        Assert.Contains(dir, e.Message);

        // Nothing half-loaded: the model is still the plain base.
        Assert.False(model.HasAdapters());
        Assert.All(model.Module.parameters(), p => Assert.True(p.requires_grad));
    }

    [Fact]
    public void LoadingIntoExistingAdaptersNeedsTheSameLayersAndSettings()
    {
        using var tmp = TestPaths.CreateTempDir();
        var (baseDir, dir) = WriteAdapter(tmp.Path, "llama");
        using var model = ModelLoader.Load(baseDir);
        model.Inject(new LoraOptions { TargetModules = ["q_proj", "k_proj"] });
        var e = Assert.Throws<DpoSharpException>(() => PeftAdapter.Load(model, dir));
        Assert.Contains("other layers", e.Message);
        model.RemoveAdapters();
        model.Inject(new LoraOptions { LoraAlpha = 32 });
        e = Assert.Throws<DpoSharpException>(() => PeftAdapter.Load(model, dir));
        Assert.Contains("lora_alpha 16 differ from this model's adapters (r 8, lora_alpha 32)", e.Message);
        model.RemoveAdapters();
        model.Inject(new LoraOptions());
        PeftAdapter.Load(model, dir);
        Assert.True(model.Targets()[0].Adapter.B.abs().sum().item<float>() > 0);
        Assert.Throws<DpoSharpException>(() => PeftAdapter.Load(model, Path.Combine(tmp.Path, "nowhere")));
    }

    private static void EditConfig(string dir, Action<JsonObject> edit)
    {
        var path = Path.Combine(dir, PeftAdapter.ConfigFileName);
        var o = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(o);
        File.WriteAllText(path, o.ToJsonString());
    }

    private static void EditWeights(string dir, Action<List<(string Name, Tensor Tensor)>> edit)
    {
        var path = Path.Combine(dir, PeftAdapter.WeightsFileName);
        Dictionary<string, Tensor> all;
        using (var f = SafeTensorsFile.Open(path))
        {
            all = f.ReadAll();
        }

        var list = all.Select(kv => (kv.Key, kv.Value)).ToList();
        edit(list);
        SafeTensorsWriter.Write(path, list);
        foreach (var (_, t) in list)
        {
            t.Dispose();
        }
    }

    private static void Rename(List<(string Name, Tensor Tensor)> w, string from, string to)
    {
        for (int i = 0; i < w.Count; i++)
        {
            w[i] = (w[i].Name.Replace(from, to, StringComparison.Ordinal), w[i].Tensor);
        }
    }

    private static void Replace(List<(string Name, Tensor Tensor)> w, string key, Tensor value)
    {
        int i = w.FindIndex(x => x.Name == key);
        w[i] = (key, value);
    }
}
