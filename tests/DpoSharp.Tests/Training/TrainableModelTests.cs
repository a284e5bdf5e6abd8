using DpoSharp.Diagnostics;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using DpoSharp.Modules;
using DpoSharp.Training;

namespace DpoSharp.Tests.Training;

/// <summary><see cref="TrainableModel.Prepare"/>: LoRA and memory levers from a run's options, as every trainer applies them.</summary>
[Collection(nameof(TorchRngCollection))]
public class TrainableModelTests
{
    [Theory]
    [AllModelTypes]
    public void UsePeftInjectsAdaptersFreezesTheBaseAndTurnsCheckpointingOn(string modelType)
    {
        using var model = TinyModels.Create(modelType);
        var options = new DpoOptions { UsePeft = true, LoraR = 2, Model = "base/" + modelType };
        TrainableModel.Prepare(model, options);
        Assert.True(model.HasAdapters());
        Assert.Equal(LoraOptions.DefaultTargetModules(modelType).Order(StringComparer.Ordinal), model.Targets().Select(t => t.Path.Split('.')[^1]).Distinct().Order(StringComparer.Ordinal));
        Assert.All(model.Module.named_parameters(), p => Assert.Equal(LoraAdapter.IsAdapterParameter(p.name), p.parameter.requires_grad));
        Assert.All(model.Targets(), t => Assert.Equal(2, t.Adapter.A.shape[0]));
        Assert.True(model.GradientCheckpointing);                          // null: on with LoRA
        Assert.Equal("base/" + modelType, model.Options()!.BaseModelNameOrPath);

        // The count the memory estimate uses before anything is loaded equals the adapters injected.
        var plan = MemoryPlan.ForRun(model.Config, options, rows: 2, sequenceLength: 8, reference: false);
        Assert.Equal(model.CountParameters().Trainable, plan.TrainableParameters);
        Assert.Equal(model.CountParameters().Total - plan.TrainableParameters, plan.Parameters);
        Assert.True(plan.GradientCheckpointing);

        // A model that already has adapters keeps them (the library user injected their own).
        var before = model.Targets().Select(t => t.Adapter).ToList();
        TrainableModel.Prepare(model, options);
        Assert.Equal(before, model.Targets().Select(t => t.Adapter).ToList());
    }

    [Fact]
    public void LeversFollowTheOptionsWithAndWithoutLora()
    {
        using var plain = TinyModels.Create("llama");
        TrainableModel.Prepare(plain, new DpoOptions());
        Assert.False(plain.GradientCheckpointing);                          // null: off without LoRA
        Assert.Equal(CausalLMBase.DefaultLogitsChunkSize, plain.LogitsChunkSize);
        Assert.False(plain.HasAdapters());

        using var lora = TinyModels.Create("llama");
        TrainableModel.Prepare(lora, new SftOptions { UsePeft = true, GradientCheckpointing = false, LogitsChunkSize = 0, LoraTargetModules = ["all-linear"] });
        Assert.False(lora.GradientCheckpointing);
        Assert.Equal(0, lora.LogitsChunkSize);
        Assert.Equal(lora.LinearLayers().Count, lora.Targets().Count);

        var full = MemoryPlan.ForRun(plain.Config, new DpoOptions(), rows: 4, sequenceLength: 16, reference: true);
        Assert.Equal(ModelLoader.CountParameters(plain), full.Parameters);
        Assert.Equal(full.Parameters, full.TrainableParameters);
        Assert.True(full.ChunkedLogProbs);
        var bf16 = MemoryPlan.ForRun(plain.Config, new DpoOptions { TorchDtype = "bfloat16" }, rows: 4, sequenceLength: 16, reference: true);
        Assert.Equal(4, bf16.WeightBytes);                                  // the policy trains in fp32
        Assert.Equal(2, bf16.ReferenceBytes);                               // the reference copy is bf16
        Assert.Equal(2 * full.Parameters, MemoryEstimator.Estimate(bf16).Reference);
    }

    [Fact]
    public void AnAdapterFolderIsLoadedAndCannotBeStackedOnAModelWithAdapters()
    {
        using var dir = TestPaths.CreateTempDir();
        var (baseDir, adapterDir) = TinyAdapters.Write(dir.Path, "gpt2");
        using var expected = TinyAdapters.LoadWithAdapter(baseDir, adapterDir);
        using var model = ModelLoader.Load(baseDir);
        var options = new DpoOptions { Adapter = adapterDir };
        Assert.True(options.TrainsAdapters);
        TrainableModel.Prepare(model, options);
        var got = model.Targets().ToDictionary(t => t.Path);
        Assert.All(expected.Targets(), t =>
        {
            Assert.True(TensorBits.Identical(t.Adapter.A, got[t.Path].Adapter.A), t.Path);
            Assert.True(TensorBits.Identical(t.Adapter.B, got[t.Path].Adapter.B), t.Path);
        });
        Assert.Equal(model.CountParameters().Trainable, MemoryPlan.ForRun(model.Config, options, 2, 8, reference: false).TrainableParameters);
        var e = Assert.Throws<DpoSharpException>(() => TrainableModel.Prepare(model, options));
        Assert.Contains("already has LoRA adapters", e.Message);
    }

    [Fact]
    public void FixesNameWhatShrinksTheRunWithTheEstimateEachGives()
    {
        var config = ModelPresets.Get("qwen2.5-0.5b");
        var plan = MemoryPlan.ForRun(config, new DpoOptions { LogitsChunkSize = 0 }, rows: 4, sequenceLength: 256, reference: true);
        var total = MemoryEstimator.Estimate(plan).Total;
        var fixes = MemoryEstimator.Fixes(plan, "--per-device-train-batch-size", "--max-length");
        foreach (var flag in new[] { "--use-peft", "--gradient-checkpointing", "--logits-chunk-size 256", "--precompute-ref-log-probs", "--torch-dtype bfloat16", "--per-device-train-batch-size", "--max-length" })
        {
            var fix = Assert.Single(fixes, f => f.Contains(flag, StringComparison.Ordinal));
            var gb = double.Parse(fix[(fix.LastIndexOf("about ", StringComparison.Ordinal) + 6)..].Replace(" GB", "", StringComparison.Ordinal), System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(gb * 1e9 < total, $"{fix} vs {total}");
        }

        // Levers already on are not suggested again.
        var lean = MemoryPlan.ForRun(config, new DpoOptions { UsePeft = true }, rows: 4, sequenceLength: 256, reference: false);
        var leanFixes = MemoryEstimator.Fixes(lean, "--per-device-train-batch-size", "--max-length");
        Assert.DoesNotContain(leanFixes, f => f.Contains("--use-peft", StringComparison.Ordinal) || f.Contains("--gradient-checkpointing", StringComparison.Ordinal) || f.Contains("--logits-chunk-size", StringComparison.Ordinal));
        Assert.Contains(leanFixes, f => f.Contains("bf16 frozen base", StringComparison.Ordinal));
    }
}
