using Xunit.Abstractions;
using System.Text.Json.Nodes;
using DpoSharp.IO;
using DpoSharp.Tests.Cli.Commands;
using DpoSharp.Training.Metrics;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Distributed;

/// <summary>
/// Data parallelism end to end: <c>mpirun -np 2 dposharp train|sft</c> with per-device batch B equals one process
/// with batch 2B — the same logged losses and metrics at every step and the same final weights, within 1e-5 — for
/// DPO (with sharded evaluation and checkpoints), SFT (uneven completion lengths, gradient accumulation) and LoRA
/// (adapters only, precomputed reference log-probs computed in parallel). Only rank 0 prints and writes; resuming
/// with another number of processes is refused with exit 2.
/// </summary>
public class MpiTrainingTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-5;

    private static readonly string[] Common = ["--logging-steps", "1", "--report-to", "jsonl", "--device", "cpu", "--threads", "1"];

    [SkippableFact]
    public void DpoOnTwoRanksWithBatch4EqualsOneProcessWithBatch8AndOnlyRank0WritesAndResumeNeedsTwoRanks()
    {
        var mpirun = MpiLauncher.RequireOrSkip(output);
        using var dir = TestPaths.CreateTempDir();
        var (model, dataset) = WriteDpoJob(dir.Path, rows: 16);
        var eval = WriteDpoEval(dir.Path);
        string[] Args(string outDir, int batch) => ["train", "--model", model, "--dataset", dataset, "--output-dir", outDir, "--max-steps", "6", "--save-steps", "3",
            "--per-device-train-batch-size", batch.ToString(System.Globalization.CultureInfo.InvariantCulture), "--per-device-eval-batch-size", "2",
            "--eval-dataset", eval, "--eval-strategy", "steps", "--eval-steps", "3", "--learning-rate", "5e-4", .. Common];

        var (one, two, stdout) = RunAloneAndOnTwoRanks(mpirun, dir.Path, Args, batch: 4);

        // Rank 0 alone prints the run and writes the files.
        Assert.Single(stdout.Split('\n'), l => l.StartsWith("done:", StringComparison.Ordinal));
        Assert.Equal(["checkpoint-3", "checkpoint-6"], Directory.GetDirectories(two, "checkpoint-*").Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(2, JsonNode.Parse(File.ReadAllText(Path.Combine(two, "trainer_state.json")))!["data_position"]!["world_size"]!.GetValue<int>());

        double metrics = CompareMetrics(one, two, ["loss", "rewards/accuracies", "rewards/margins", "rewards/chosen", "logps/rejected", "grad_norm", "eval_loss", "eval_rewards/margins"], expectedRecords: 6 + 2);
        double weights = CompareWeights(Path.Combine(one, "model.safetensors"), Path.Combine(two, "model.safetensors"));
        Assert.True(MaxDifference(Path.Combine(model, "model.safetensors"), Path.Combine(two, "model.safetensors")) > 1e-4, "the weights did not move: nothing was compared");
        output.WriteLine($"DPO np 2 × 4 vs 1 × 8: max |Δ metric| {metrics:E2}, max |Δ weight| {weights:E2}");

        // The checkpoint records 2 processes: one process cannot continue it (its data position would differ).
        var resumed = CliRunner.Run([.. Args(two, 4), "--resume"]);
        Assert.Equal(2, resumed.Rc);
        Assert.Contains("trained by 2 data-parallel process(es), this run has 1", resumed.Err, StringComparison.Ordinal);
        Assert.Contains("mpirun -np 2", resumed.Err, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void SftOnTwoRanksWithUnevenTokenCountsAndAccumulationEqualsOneProcess()
    {
        var mpirun = MpiLauncher.RequireOrSkip(output);
        using var dir = TestPaths.CreateTempDir();
        var (model, _) = CliTrainTests.WriteTinyJob(dir.Path, rows: 2);
        var dataset = Path.Combine(dir.Path, "sft.jsonl");
        var rng = new Random(9);

        // Completions of 1 to 12 tokens: the ranks' shares of a step have different token counts.
        File.WriteAllLines(dataset, Enumerable.Range(0, 16).Select(i =>
            new JsonObject { ["prompt"] = $"{i % 7}+{i % 5}=", ["completion"] = new string('x', rng.Next(12)) + $"{(i % 7) + (i % 5)}" }.ToJsonString()));
        string[] Args(string outDir, int batch) => ["sft", "--model", model, "--dataset", dataset, "--output-dir", outDir, "--max-steps", "4",
            "--per-device-train-batch-size", batch.ToString(System.Globalization.CultureInfo.InvariantCulture), "--gradient-accumulation-steps", "2", "--learning-rate", "3e-4", .. Common];

        var (one, two, _) = RunAloneAndOnTwoRanks(mpirun, dir.Path, Args, batch: 2);

        double metrics = CompareMetrics(one, two, ["loss", "mean_token_accuracy", "grad_norm", "num_tokens"], expectedRecords: 4);
        double weights = CompareWeights(Path.Combine(one, "model.safetensors"), Path.Combine(two, "model.safetensors"));
        output.WriteLine($"SFT np 2 × 2 × accumulation 2 vs 1 × 4 × 2: max |Δ metric| {metrics:E2}, max |Δ weight| {weights:E2}");
    }

    [SkippableFact]
    public void LoraWithPrecomputedReferenceOnTwoRanksEqualsOneProcess()
    {
        var mpirun = MpiLauncher.RequireOrSkip(output);
        using var dir = TestPaths.CreateTempDir();
        var (model, dataset) = WriteDpoJob(dir.Path, rows: 16);
        string[] Args(string outDir, int batch) => ["train", "--model", model, "--dataset", dataset, "--output-dir", outDir, "--max-steps", "4",
            "--per-device-train-batch-size", batch.ToString(System.Globalization.CultureInfo.InvariantCulture), "--use-peft", "--lora-r", "4", "--lora-dropout", "0",
            "--precompute-ref-log-probs", "--precompute-ref-batch-size", "3", "--learning-rate", "1e-3", .. Common];

        var (one, two, _) = RunAloneAndOnTwoRanks(mpirun, dir.Path, Args, batch: 4);

        // rewards/accuracies from step 2: at step 1 the policy is the reference (LoRA B = 0), every margin is 0 up to
        // fp32 rounding that depends on how the batch was padded, and the count of margins > 0 is decided by it.
        double metrics = CompareMetrics(one, two, ["loss", "rewards/accuracies", "rewards/margins", "logps/chosen", "grad_norm"], expectedRecords: 4, notAtStep1: "rewards/accuracies");
        double weights = CompareWeights(Path.Combine(one, "adapter_model.safetensors"), Path.Combine(two, "adapter_model.safetensors"));
        Assert.False(File.Exists(Path.Combine(two, "model.safetensors")));
        output.WriteLine($"LoRA + precomputed reference np 2 × 4 vs 1 × 8: max |Δ metric| {metrics:E2}, max |Δ adapter weight| {weights:E2}");
    }

    [SkippableFact]
    public void AnErrorOnARankEndsTheWholeJobWithItsExitCodeInsteadOfHanging()
    {
        var mpirun = MpiLauncher.RequireOrSkip(output);
        using var dir = TestPaths.CreateTempDir();

        // Bad input seen by both ranks after MPI started: the first rank to fail aborts the world with exit 2.
        var (rc, stdout, err) = MpiLauncher.Run(mpirun, 2, "train", "--model", Path.Combine(dir.Path, "missing"), "--dataset", Path.Combine(dir.Path, "none.jsonl"),
            "--output-dir", Path.Combine(dir.Path, "out"), "--threads", "1");
        Assert.True(rc == 2, $"mpirun exited {rc}: {stdout}{err}");
        Assert.Contains("MPI_ABORT was invoked", err, StringComparison.Ordinal);
        Assert.Contains("error: model directory", err, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void BenchMpiOnTwoRanksReportsTheAllReduceAndAProjectionByTheRingFormula()
    {
        var mpirun = MpiLauncher.RequireOrSkip(output);
        using var dir = TestPaths.CreateTempDir();
        var model = TinyCheckpoints.Write(Path.Combine(dir.Path, "tiny"), "llama", seed: 1);
        var (rc, stdout, err) = MpiLauncher.Run(mpirun, 2, "bench", "--mpi", "--preset", model, "--pairs", "2", "--prompt-len", "5", "--completion-len", "3", "--steps", "1",
            "--threads", "1", "--network-gbps", "8", "--json");
        Assert.True(rc == 0, stdout + err);
        // Rank 0 alone prints: one JSON object (after any terminal set-up bytes the .NET console writes under mpirun).
        var o = JsonNode.Parse(stdout[stdout.IndexOf('{', StringComparison.Ordinal)..].Trim())!.AsObject();
        Assert.Equal(2, o["world_size"]!.GetValue<int>());
        long bytes = o["gradient_bytes"]!.GetValue<long>();
        Assert.Equal(4 * o["trainable_parameters"]!.GetValue<long>(), bytes);
        double allReduce = o["allreduce_seconds"]!.GetValue<double>();
        Assert.True(allReduce > 0);
        Assert.Equal(bytes / allReduce, o["allreduce_bytes_per_second"]!.GetValue<double>(), 6);
        Assert.Equal(2 * o["pairs_per_second"]!.GetValue<double>(), o["global_pairs_per_second"]!.GetValue<double>(), 9);

        // T(N) = (step − all-reduce) + 2(N − 1)/N · G / B with B = 8 Gbit/s = 1e9 bytes/s.
        double compute = o["seconds_per_step"]!.GetValue<double>() - allReduce;
        foreach (int n in new[] { 1, 2, 4, 8, 16 })
        {
            double expected = compute + (2.0 * (n - 1) / n * bytes / 1e9);
            Assert.Equal(expected, o["projection"]![n.ToString(System.Globalization.CultureInfo.InvariantCulture)]!["seconds_per_step"]!.GetValue<double>(), 9);
        }
    }

    /// <summary>Runs <paramref name="args"/> as one process with batch 2 × <paramref name="batch"/> into <c>one</c> and as
    /// two MPI ranks with batch <paramref name="batch"/> into <c>two</c> (both under <paramref name="root"/>); asserts both
    /// succeed; returns the two output folders and mpirun's stdout.</summary>
    private static (string One, string Two, string Stdout) RunAloneAndOnTwoRanks(string mpirun, string root, Func<string, int, string[]> args, int batch)
    {
        var one = Path.Combine(root, "one");
        var two = Path.Combine(root, "two");
        var single = CliProcess.Run(args(one, 2 * batch));
        Assert.True(single.Rc == 0, single.Err);
        var (rc, stdout, err) = MpiLauncher.Run(mpirun, 2, args(two, batch));
        Assert.True(rc == 0, stdout + err);
        return (one, two, stdout);
    }

    /// <summary>The tiny job with prompts of 1 to 9 extra tokens, so the ranks' batches pad differently.</summary>
    private static (string Model, string Dataset) WriteDpoJob(string root, int rows)
    {
        var (model, _) = CliTrainTests.WriteTinyJob(root, rows: 2);
        var dataset = Path.Combine(root, "pairs-varied.jsonl");
        var rng = new Random(17);
        File.WriteAllLines(dataset, Enumerable.Range(0, rows).Select(i =>
        {
            int a = rng.Next(10), b = rng.Next(10);
            return new JsonObject { ["prompt"] = new string(' ', rng.Next(9)) + $"{a}+{b}=", ["chosen"] = $"{a + b}", ["rejected"] = $"{a + b + 1 + rng.Next(30)}" }.ToJsonString();
        }));
        return (model, dataset);
    }

    private static string WriteDpoEval(string root)
    {
        var path = Path.Combine(root, "eval.jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, 7).Select(i => new JsonObject { ["prompt"] = $"{i}+{i}=", ["chosen"] = $"{2 * i}", ["rejected"] = $"{(2 * i) + 3}" }.ToJsonString()));
        return path;
    }

    /// <summary>Asserts both runs logged the same records with <paramref name="names"/> within 1e-5 (<paramref name="notAtStep1"/>
    /// from step 2 on); returns the largest difference.</summary>
    private static double CompareMetrics(string one, string two, string[] names, int expectedRecords, string? notAtStep1 = null)
    {
        var a = JsonlMetricSink.Read(Path.Combine(one, "metrics.jsonl"));
        var b = JsonlMetricSink.Read(Path.Combine(two, "metrics.jsonl"));
        Assert.Equal(expectedRecords, a.Count);
        Assert.Equal(a.Select(r => r.Step), b.Select(r => r.Step));
        double max = 0;
        int compared = 0;
        for (int i = 0; i < a.Count; i++)
        {
            foreach (var name in names.Where(a[i].Values.ContainsKey).Where(n => n != notAtStep1 || a[i].Step > 1))
            {
                double d = Math.Abs(a[i].Values[name] - b[i].Values[name]);
                Assert.True(d <= Tolerance * Math.Max(1, Math.Abs(a[i].Values[name])), $"step {a[i].Step} {name}: one process {a[i].Values[name]:R}, two {b[i].Values[name]:R}");
                max = Math.Max(max, d / Math.Max(1, Math.Abs(a[i].Values[name])));
                compared++;
            }
        }

        Assert.True(compared >= expectedRecords, "no metric was compared");
        return max;
    }

    /// <summary>Asserts both files hold the same tensors within 1e-5; returns the largest difference.</summary>
    private static double CompareWeights(string one, string two)
    {
        double max = MaxDifference(one, two);
        Assert.True(max <= Tolerance, $"weights differ by {max:E3}");
        return max;
    }

    /// <summary>The largest element difference between the same-named tensors of two files (same names asserted).</summary>
    private static double MaxDifference(string one, string two)
    {
        using var scope = NewDisposeScope();
        using var fa = SafeTensorsFile.Open(one);
        using var fb = SafeTensorsFile.Open(two);
        var a = fa.ReadAll();
        var b = fb.ReadAll();
        Assert.Equal(a.Keys.Order(StringComparer.Ordinal), b.Keys.Order(StringComparer.Ordinal));
        double max = 0;
        foreach (var (name, t) in a)
        {
            max = Math.Max(max, (t.to(ScalarType.Float64) - b[name].to(ScalarType.Float64)).abs().max().item<double>());
        }

        return max;
    }
}
