using System.Text.Json.Nodes;
using DpoSharp.Diagnostics;
using DpoSharp.Models;

namespace DpoSharp.Tests.Cli.Commands;

[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class BenchCommandTests
{
    [Fact]
    public void BenchPrintsOneJsonObjectWithTheMeasurementsAndTheEstimateParts()
    {
        using var dir = TestPaths.CreateTempDir();
        var model = TinyCheckpoints.Write(Path.Combine(dir.Path, "tiny"), "llama", seed: 1);
        var (rc, stdout, err) = CliRunner.Run("bench", "--preset", model, "--pairs", "2", "--prompt-len", "5", "--completion-len", "3", "--steps", "2", "--json");
        Assert.True(rc == 0, err);
        var o = JsonNode.Parse(stdout.Trim())!.AsObject();
        foreach (var key in new[] { "pairs_per_second", "tokens_per_second", "seconds_per_step", "peak_rss_bytes", "memory_estimate_bytes" })
        {
            Assert.True(o.ContainsKey(key), key);
        }

        double seconds = o["seconds_per_step"]!.GetValue<double>();
        Assert.True(seconds > 0);
        Assert.Equal(2 / seconds, o["pairs_per_second"]!.GetValue<double>(), 9);
        Assert.Equal(2 * 2 * (5 + 3) / seconds, o["tokens_per_second"]!.GetValue<double>(), 6);
        var parts = o["memory_estimate"]!.AsObject();
        long sum = parts.Sum(kv => kv.Value!.GetValue<long>());
        Assert.Equal(o["memory_estimate_bytes"]!.GetValue<long>(), sum);
        foreach (var part in new[] { "weights_bytes", "gradients_bytes", "optimizer_state_bytes", "reference_bytes", "activations_bytes" })
        {
            Assert.True(parts[part]!.GetValue<long>() > 0, part);
        }

        using var loaded = ModelLoader.Load(model);
        long n = ModelLoader.CountParameters(loaded);
        Assert.Equal(n, o["parameters"]!.GetValue<long>());
        Assert.Equal(4 * n, parts["weights_bytes"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("naive")]
    [InlineData("no-prefix-sharing")]
    public void BenchWithABaselineReportsItsSpeedTheSpeedupTheTimeSplitAndMfu(string baseline)
    {
        using var dir = TestPaths.CreateTempDir();
        var model = TinyCheckpoints.Write(Path.Combine(dir.Path, "tiny"), "gpt2", seed: 1);
        var (rc, stdout, err) = CliRunner.Run("bench", "--preset", model, "--pairs", "2", "--prompt-len", "5", "--completion-len", "3", "--steps", "1", "--baseline", baseline, "--json");
        Assert.True(rc == 0, err);
        var o = JsonNode.Parse(stdout.Trim())!.AsObject();
        double D(string key) => o[key]!.GetValue<double>();
        Assert.Equal(baseline, o["baseline"]!.GetValue<string>());
        Assert.True(o["prefix_sharing"]!.GetValue<bool>());
        Assert.Equal(D("seconds_per_step"), D("reference_forward_seconds") + D("policy_forward_seconds") + D("backward_seconds") + D("optimizer_seconds"), 6);
        Assert.Equal(D("baseline_seconds_per_step"), D("baseline_reference_forward_seconds") + D("baseline_policy_forward_seconds") + D("baseline_backward_seconds") + D("baseline_optimizer_seconds"), 6);
        Assert.Equal(D("baseline_seconds_per_step") / D("seconds_per_step"), D("speedup"), 6);
        Assert.Equal(2 / D("baseline_seconds_per_step"), D("baseline_pairs_per_second"), 6);

        // Needed work of the tiny gpt2 (2 layers of 32·96 + 32·32 + 32·128 + 128·32 weights, head 32·260, width 32),
        // 2 pairs of prompt 5 + completions 3 and 3 with prefix sharing: 11 tokens, 15 + 2·(15 + 6) = 57 attention
        // pairs, 6 logit positions; 3× for the policy plus 1× for the reference.
        double forward = (2.0 * 2 * 12288 * 11) + (2.0 * 32 * 260 * 6) + (4.0 * 2 * 32 * 57);
        Assert.Equal(2 * 4 * forward / 1e9, D("needed_gflop_per_step"), 9);
        Assert.Equal(D("needed_gflop_per_step") / D("seconds_per_step"), D("achieved_gflops"), 6);
        Assert.True(D("gemm_peak_gflops") > 0);
        Assert.Equal(D("achieved_gflops") / D("gemm_peak_gflops"), D("mfu"), 9);
    }

    [Fact]
    public void BenchRefusesBadValuesAndUnknownPresetsWithExitTwo()
    {
        var (rc, _, err) = CliRunner.Run("bench", "--preset", "gpt5", "--json");
        Assert.Equal(2, rc);
        Assert.Contains("unknown model preset 'gpt5'", err);
        (rc, _, err) = CliRunner.Run("bench", "--pairs", "0");
        Assert.Equal(2, rc);
        Assert.Contains("--pairs must be at least 1", err);
    }

    [Fact]
    public void APhi2FullFineTuneIsRefusedBeforeAnythingIsAllocatedWhenItCannotFit()
    {
        // Full DPO of Phi-2 in fp32 with a reference copy needs ≈ 56 GB: more than this machine has.
        var e = MemoryEstimator.Estimate(DpoStepBenchmark.Plan(new BenchmarkOptions { Preset = "phi-2", Pairs = 1, PromptLength = 32, CompletionLength = 32 }));
        Assert.True(e.Total > 50e9, e.ToString());
        if (ProcMemory.AvailableBytes() is long available && available < e.Total)
        {
            var (rc, _, err) = CliRunner.Run("bench", "--preset", "phi-2", "--pairs", "1", "--prompt-len", "32", "--completion-len", "32", "--steps", "1");
            Assert.Equal(2, rc);
            Assert.Contains("out-of-memory killer", err);
            Assert.Contains("optimizer state", err);
        }
    }
    [Fact]
    public void BenchWithLoraTrainsOnlyAdaptersWithoutAReferenceCopyAndWithCheckpointing()
    {
        using var dir = TestPaths.CreateTempDir();
        var model = TinyCheckpoints.Write(Path.Combine(dir.Path, "tiny"), "llama", seed: 1);
        var (rc, stdout, err) = CliRunner.Run("bench", "--preset", model, "--pairs", "1", "--prompt-len", "4", "--completion-len", "3", "--steps", "1",
            "--lora", "--lora-r", "2", "--lora-target", "all-linear", "--json");
        Assert.True(rc == 0, err);
        var o = JsonNode.Parse(stdout.Trim())!.AsObject();
        long n = o["parameters"]!.GetValue<long>(), trainable = o["trainable_parameters"]!.GetValue<long>();

        // r·(in + out) per linear layer of the tiny llama (hidden 32, intermediate 64, 4 heads of 8, 2 KV heads; 2 layers).
        long perLayer = (2 * (32 + 32)) + (2 * (32 + 16)) + (2 * (32 + 16)) + (2 * (32 + 32)) + (2 * 2 * (32 + 64)) + (2 * (64 + 32));
        Assert.Equal(2 * perLayer, trainable);
        Assert.Equal("adapters_disabled", o["reference"]!.GetValue<string>());
        Assert.True(o["gradient_checkpointing"]!.GetValue<bool>());
        var parts = o["memory_estimate"]!.AsObject();
        Assert.Equal(0, parts["reference_bytes"]!.GetValue<long>());
        Assert.Equal(4 * trainable, parts["gradients_bytes"]!.GetValue<long>());
        Assert.Equal(8 * trainable, parts["optimizer_state_bytes"]!.GetValue<long>());
        Assert.Equal((4 * n) + (4 * trainable), parts["weights_bytes"]!.GetValue<long>());
    }
}
