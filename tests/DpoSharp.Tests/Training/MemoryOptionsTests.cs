using DpoSharp.Training.Engine;
using DpoSharp.Data;
using DpoSharp.Losses;
using DpoSharp.Models;
using DpoSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Training;

/// <summary>
/// The memory levers end to end: a short DPO run (with WPO weighting, so its statistics come from the chunked
/// pass too) and a short SFT run (<c>mean_token_accuracy</c>) with gradient checkpointing, chunked completion-only
/// log-probs on policy and reference match the runs with the levers off; options validate and apply.
/// </summary>
[Collection(nameof(TorchRngCollection))]
public class MemoryOptionsTests
{
    public MemoryOptionsTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    private static readonly MemoryOptions Off = new() { LogitsChunkSize = 0, CompletionOnlyLogits = false };
    private static readonly MemoryOptions On = new() { GradientCheckpointing = true, LogitsChunkSize = 3 };

    private static List<Dictionary<string, double>> RunDpo(MemoryOptions memory, string outputDir)
    {
        using var model = TinyModels.Create("qwen2", seed: 8);
        memory.ApplyTo(model);
        var options = new DpoOptions
        {
            OutputDir = outputDir,
            LearningRate = 1e-2,
            PerDeviceTrainBatchSize = 3,
            MaxSteps = 3,
            LoggingSteps = 1,
            SaveSteps = 1000,
            ReportTo = [ReportTarget.None],
            UseWeighting = true,
            Seed = 5,
        };
        using var trainer = new DpoTrainer(model, refModel: null, options, TinyModels.Pairs(9, seed: 2), padTokenId: 0);
        trainer.Train();
        return trainer.State.LogHistory.Where(e => e.Metrics.ContainsKey("loss")).Select(e => new Dictionary<string, double>(e.Metrics)).ToList();
    }

    [Fact]
    public void DpoRunWithTheLeversOnMatchesTheRunWithThemOff()
    {
        using var dir = TestPaths.CreateTempDir();
        var off = RunDpo(Off, Path.Combine(dir.Path, "off"));
        var on = RunDpo(On, Path.Combine(dir.Path, "on"));
        Assert.Equal(3, off.Count);
        Assert.Equal(off.Count, on.Count);
        Assert.True(off[^1]["rewards/margins"] != 0);
        foreach (var (a, b) in off.Zip(on))
        {
            foreach (var key in new[] { "loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected", "logits/chosen", "logits/rejected" })
            {
                Assert.True(Math.Abs(a[key] - b[key]) <= 1e-5 * Math.Max(1, Math.Abs(a[key])), $"{key}: {b[key]} vs {a[key]}");
            }
        }
    }

    [Fact]
    public void SftRunWithTheLeversOnMatchesTheRunWithThemOff()
    {
        using var dir = TestPaths.CreateTempDir();
        var data = TinyModels.Pairs(6, seed: 4).Select(p => new TokenizedCompletion(p.PromptIds, p.ChosenIds)).ToList();
        List<Dictionary<string, double>> Run(MemoryOptions memory, string name)
        {
            using var model = TinyModels.Create("phi", seed: 9);
            memory.ApplyTo(model);
            var options = new DpoOptions { OutputDir = Path.Combine(dir.Path, name), LearningRate = 1e-2, PerDeviceTrainBatchSize = 3, MaxSteps = 3, LoggingSteps = 1, SaveSteps = 1000, ReportTo = [ReportTarget.None], Seed = 5 };
            using var trainer = new SftTrainer(model, options, data, padTokenId: 0);
            trainer.Train();
            return trainer.State.LogHistory.Where(e => e.Metrics.ContainsKey("loss")).Select(e => new Dictionary<string, double>(e.Metrics)).ToList();
        }

        var off = Run(Off, "off");
        var on = Run(On, "on");
        Assert.Equal(off.Count, on.Count);
        foreach (var (a, b) in off.Zip(on))
        {
            Assert.True(Math.Abs(a["loss"] - b["loss"]) <= 1e-5 * Math.Max(1, Math.Abs(a["loss"])), $"loss {b["loss"]} vs {a["loss"]}");
            Assert.Equal(a["mean_token_accuracy"], b["mean_token_accuracy"]);
        }
    }

    [Fact]
    public void OptionsValidateParseDtypesAndApplyToModelsBuiltByTheLoader()
    {
        Assert.Equal(ScalarType.BFloat16, new MemoryOptions { TorchDtype = "bfloat16" }.TorchScalarType);
        Assert.Equal(ScalarType.Float16, MemoryOptions.ParseDtype("fp16"));
        Assert.Equal(ScalarType.Float32, new MemoryOptions().TorchScalarType);
        Assert.Contains("torch_dtype", Assert.Throws<DpoSharpException>(() => new MemoryOptions { TorchDtype = "float8" }.Validate()).Message);
        Assert.Contains("logits_chunk_size", Assert.Throws<DpoSharpException>(() => new MemoryOptions { LogitsChunkSize = -1 }.Validate()).Message);

        using var model = TinyModels.Create("gpt2");
        Assert.False(model.GradientCheckpointing);
        Assert.Equal(CausalLMBase.DefaultLogitsChunkSize, model.LogitsChunkSize);   // chunked log-probs by default
        Assert.Equal(CausalLMBase.DefaultLogitsChunkSize, new MemoryOptions().LogitsChunkSize);
        Assert.True(model.CompletionOnlyLogits);
        new MemoryOptions { GradientCheckpointing = true, LogitsChunkSize = 7, CompletionOnlyLogits = false }.ApplyTo(model);
        using var copy = (CausalLMBase)ModelLoader.Copy(model);
        Assert.True(copy.GradientCheckpointing);
        Assert.Equal(7, copy.LogitsChunkSize);
        Assert.False(copy.CompletionOnlyLogits);
    }

    [Fact]
    public void Bfloat16WeightsGiveLogProbsCloseToFloat32OnBothPaths()
    {
        using var f32 = TinyModels.Create("llama");
        using var batch = TinyModels.Batch();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var low = (CausalLMBase)ModelLoader.Copy(f32, dtype: MemoryOptions.ParseDtype("bfloat16"));
        var expected = CompletionLogProbs.Forward(f32, batch).LogProbs.Sums;
        var chunked = CompletionLogProbs.Forward(low, batch).LogProbs.Sums;
        low.LogitsChunkSize = 0;
        var full = CompletionLogProbs.Forward(low, batch).LogProbs.Sums;
        Assert.Equal(ScalarType.BFloat16, low.DType);
        Assert.True(chunked.allclose(expected, rtol: 0.05, atol: 0.5), $"{chunked.str()} vs {expected.str()}");
        Assert.True(chunked.allclose(full, rtol: 1e-3, atol: 1e-3), $"{chunked.str()} vs {full.str()}");
    }
}
