using DpoSharp.Diagnostics;
using DpoSharp.Models;

namespace DpoSharp.Tests.Diagnostics;

public class MemoryEstimateTests
{
    private static MemoryPlan FullDpo(string preset, int pairs, int prompt, int completion)
    {
        var config = ModelPresets.Get(preset);
        long n = MemoryEstimator.CountParameters(config);
        return new MemoryPlan { Config = config, Parameters = n, TrainableParameters = n, Rows = 2 * pairs, SequenceLength = prompt + completion, ReferenceCopy = true };
    }

    [Theory]
    // Peaks measured with VmHWM before the memory levers (BENCHMARKS.md, "DPO step"; issue 11): full DPO, fp32,
    // frozen reference copy, AdamW.
    [InlineData("gpt2", 2, 64, 64, 3.70e9)]
    [InlineData("gpt2", 4, 128, 128, 6.38e9)]
    [InlineData("qwen2.5-0.5b", 2, 128, 128, 16.6e9)]
    public void TheEstimateIsWithinFifteenPercentOfMeasuredPeaks(string preset, int pairs, int prompt, int completion, double measured)
    {
        var e = MemoryEstimator.Estimate(FullDpo(preset, pairs, prompt, completion));
        Assert.InRange(e.Total, measured * 0.85, measured * 1.15);
    }

    [Fact]
    public void PartsFollowTheTrainingSetUp()
    {
        var full = FullDpo("qwen2.5-0.5b", 2, 128, 128);
        long n = full.Parameters;
        Assert.InRange(n, 490_000_000, 500_000_000);   // Qwen2.5-0.5B: 494 M parameters (tied embeddings)
        var e = MemoryEstimator.Estimate(full);
        Assert.Equal(4 * n, e.Weights);
        Assert.Equal(4 * n, e.Gradients);
        Assert.Equal(8 * n, e.OptimizerState);
        Assert.Equal(4 * n, e.Reference);

        // LoRA-style: frozen base, few trainable parameters, reference = the same weights with adapters off.
        var lora = MemoryEstimator.Estimate(full with { TrainableParameters = 1_000_000, ReferenceCopy = false, GradientCheckpointing = true, ChunkedLogProbs = true });
        Assert.Equal((4 * n) + 4_000_000, lora.Weights);
        Assert.Equal(8_000_000, lora.OptimizerState);
        Assert.Equal(0, lora.Reference);
        Assert.True(lora.Activations < e.Activations / 4, $"{lora.Activations} vs {e.Activations}");
        Assert.True(lora.Total < 0.4 * e.Total);
    }

    [Fact]
    public void ARunThatCannotFitStopsWithTheNumbersAndTheFixes()
    {
        var e = MemoryEstimator.Estimate(FullDpo("phi-2", 1, 256, 256));
        var ex = Assert.Throws<DpoSharpException>(() => MemoryEstimator.ThrowIfTooLarge(e, 8_000_000_000, ["--lora", "--gradient-checkpointing"]));
        Assert.Contains("8.00 GB", ex.Message);
        Assert.Contains("weights", ex.Message);
        Assert.Contains("--lora; --gradient-checkpointing", ex.Message);
        MemoryEstimator.ThrowIfTooLarge(e, e.Total, []);       // fits exactly: no error
        MemoryEstimator.ThrowIfTooLarge(e, null, []);          // unknown: no error
    }

    [Fact]
    public void AvailableMemoryIsReadFromProcMeminfo()
    {
        var available = ProcMemory.AvailableBytes();
        if (File.Exists("/proc/meminfo"))
        {
            Assert.NotNull(available);
            Assert.InRange(available!.Value, 1L << 20, 1L << 50);
        }
    }
}
