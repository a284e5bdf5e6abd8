using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using DpoSharp.Data;
using DpoSharp.Models;
using DpoSharp.Tokenization;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using DpoSharp.Training.Metrics;

namespace DpoSharp.Tests.Training.Engine;

/// <summary>SFT runs on the shared loop: checkpoints, save_total_limit and a bit-exact resume, also after SIGKILL.</summary>
[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class SftResumeTests
{
    /// <summary>A tiny Llama checkpoint with a byte-level tokenizer, and a prompt/completion JSONL dataset.</summary>
    private static (string Model, string Dataset) WriteSftJob(string root, int rows = 24)
    {
        var model = TinyCheckpoints.Write(Path.Combine(root, "model"), "llama", seed: 11);
        var dataset = Path.Combine(root, "sft.jsonl");
        var rng = new Random(3);
        File.WriteAllLines(dataset, Enumerable.Range(0, rows).Select(i =>
        {
            int a = rng.Next(10), b = rng.Next(10);
            return new JsonObject { ["prompt"] = $"{a}+{b}=", ["completion"] = new string('x', 1 + rng.Next(4)) + $"{a + b}" }.ToJsonString();
        }));
        return (model, dataset);
    }

    private static string Hash(string file) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file)));

    /// <summary>metrics.jsonl without the wall-clock metrics.</summary>
    private static List<string> Metrics(string dir) => [.. JsonlMetricSink.Read(Path.Combine(dir, "metrics.jsonl")).Select(r =>
        r.Step + ":" + string.Join(",", r.Values.Where(kv => !kv.Key.Contains("per_second", StringComparison.Ordinal) && !kv.Key.EndsWith("runtime", StringComparison.Ordinal))
            .Select(kv => $"{kv.Key}={kv.Value:R}")))];

    [Fact]
    public void SftWritesCheckpointsKeepsTheLimitAndResumesBitExactly()
    {
        using var dir = TestPaths.CreateTempDir();
        var (modelDir, dataset) = WriteSftJob(dir.Path);
        var tok = HfTokenizer.Load(modelDir);
        var rows = SftDataset.Load(dataset);
        DpoOptions Args(string output) => new()
        {
            OutputDir = output,
            LearningRate = 3e-3,
            PerDeviceTrainBatchSize = 4,
            PerDeviceEvalBatchSize = 5,
            GradientAccumulationSteps = 2,
            MaxSteps = 12,
            LoggingSteps = 2,
            SaveSteps = 4,
            SaveTotalLimit = 2,
            EvalStrategy = EvalStrategy.Steps,
            EvalSteps = 4,
            DisableDropout = false,
            ReportTo = [ReportTarget.Jsonl],
        };

        var full = Path.Combine(dir.Path, "full");
        using (var model = ModelLoader.Load(modelDir))
        using (var trainer = new SftTrainer(model, Args(full), rows, tok, rows.Take(7).ToList()))
        {
            var result = trainer.Train();
            Assert.Equal(12, result.GlobalStep);
            Assert.True(double.IsFinite(result.TrainingLoss));
        }

        // save_steps 4 over 12 steps: checkpoints 4, 8 and 12, of which save_total_limit 2 keeps the last two; eval at 4, 8, 12.
        Assert.Equal(["checkpoint-12", "checkpoint-8"], Directory.GetDirectories(full, "checkpoint-*").Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.True(File.Exists(Path.Combine(full, "checkpoint-8", "optimizer.safetensors")));
        var state = Checkpointer.ReadTrainerState(Path.Combine(full, Checkpointer.TrainerStateFile));
        Assert.Equal(12, state.GlobalStep);
        Assert.Equal(3, state.LogHistory.Count(e => e.Metrics.ContainsKey("eval_loss")));
        Assert.All(state.LogHistory.Where(e => e.Metrics.ContainsKey("loss")), e => Assert.InRange(e.Metrics["mean_token_accuracy"], 0, 1));

        // A second run from checkpoint-8 alone reaches the same weights and the same logged metrics, bit for bit.
        var resumed = Path.Combine(dir.Path, "resumed");
        Directory.CreateDirectory(resumed);
        CopyDirectory(Path.Combine(full, "checkpoint-8"), Path.Combine(resumed, "checkpoint-8"));
        File.Copy(Path.Combine(full, "metrics.jsonl"), Path.Combine(resumed, "metrics.jsonl"));
        var args = Args(resumed);
        args.Resume = true;
        using (var model = ModelLoader.Load(modelDir))
        using (var trainer = new SftTrainer(model, args, rows, tok, rows.Take(7).ToList()))
        {
            Assert.Equal(12, trainer.Train().GlobalStep);
        }

        Assert.Equal(Hash(Path.Combine(full, "model.safetensors")), Hash(Path.Combine(resumed, "model.safetensors")));
        Assert.Equal(string.Join("\n", Metrics(full)), string.Join("\n", Metrics(resumed)));
    }

    [Fact]
    public void SftGradientAccumulationAveragesOverEveryCompletionTokenOfTheStep()
    {
        // One batch of 8 rows vs 4 micro-batches of 2: the loss is token-weighted over the whole step, so the updates
        // agree to fp32 rounding although the micro-batches have different token counts.
        using var dir = TestPaths.CreateTempDir();
        var (modelDir, dataset) = WriteSftJob(dir.Path, rows: 8);
        var tok = HfTokenizer.Load(modelDir);
        var rows = SftDataset.Load(dataset);
        Dictionary<string, float[]> Run(int batch, int accumulation)
        {
            using var model = ModelLoader.Load(modelDir);
            var args = new DpoOptions { OutputDir = Path.Combine(dir.Path, $"acc{batch}"), LearningRate = 1e-2, PerDeviceTrainBatchSize = batch, GradientAccumulationSteps = accumulation, MaxSteps = 1, MaxGradNorm = 0, ReportTo = [ReportTarget.None] };
            using var trainer = new SftTrainer(model, args, rows, tok);
            trainer.Train();
            return model.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());
        }

        var big = Run(8, 1);
        var small = Run(2, 4);
        Assert.All(big, kv => Assert.All(kv.Value.Zip(small[kv.Key]), x => Assert.Equal(x.First, x.Second, 1e-5)));
    }

    [Fact]
    public void SftOnRankOneTrainsOnItsShardAndWritesNothing()
    {
        using var dir = TestPaths.CreateTempDir();
        var (modelDir, dataset) = WriteSftJob(dir.Path, rows: 16);
        var rows = SftDataset.Load(dataset);
        using var model = ModelLoader.Load(modelDir);
        var output = Path.Combine(dir.Path, "rank1");
        var args = new DpoOptions { OutputDir = output, LearningRate = 1e-3, PerDeviceTrainBatchSize = 2, NumTrainEpochs = 1, SaveSteps = 1, ReportTo = [ReportTarget.Jsonl] };
        using var trainer = new SftTrainer(model, args, rows, HfTokenizer.Load(modelDir)) { Rank = 1, WorldSize = 2 };
        Assert.Equal(4, trainer.Sampler.BatchesPerEpoch);
        Assert.Equal(4, trainer.Train().GlobalStep);
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void SigkilledSftRunResumesBitExactly()
    {
        using var dir = TestPaths.CreateTempDir();
        var (modelDir, dataset) = WriteSftJob(dir.Path, rows: 48);
        string[] Args(string output) => ["sft", "--model", modelDir, "--dataset", dataset, "--output-dir", output, "--max-steps", "150", "--save-steps", "5",
            "--save-total-limit", "2", "--per-device-train-batch-size", "4", "--learning-rate", "1e-3", "--logging-steps", "5", "--report-to", "jsonl"];

        // The uninterrupted run and the killed and resumed one run in child processes with the same thread count.
        var full = Path.Combine(dir.Path, "full");
        var (rc, _, err) = CliProcess.Run(Args(full));
        Assert.True(rc == 0, err);

        var killed = Path.Combine(dir.Path, "killed");
        using (var child = CliProcess.Start(Args(killed)))
        {
            var wait = Stopwatch.StartNew();
            while (!child.HasExited && wait.Elapsed < TimeSpan.FromMinutes(2))
            {
                // Kill once checkpoint-20 is complete (checkpoints appear atomically), mid-way through the run.
                if (Checkpointer.FindLatest(killed) is { } latest && int.Parse(latest[(latest.LastIndexOf('-') + 1)..], System.Globalization.CultureInfo.InvariantCulture) >= 20)
                {
                    break;
                }

                Thread.Sleep(10);
            }

            Assert.False(child.HasExited, "the run finished before it could be killed; give it more steps");
            child.Kill();   // SIGKILL: no handler runs
            child.WaitForExit(TimeSpan.FromMinutes(1));
        }

        Assert.False(File.Exists(Path.Combine(killed, "model.safetensors")));
        (rc, _, err) = CliProcess.Run([.. Args(killed), "--resume"]);
        Assert.True(rc == 0, err);
        Assert.Equal(Hash(Path.Combine(full, "model.safetensors")), Hash(Path.Combine(killed, "model.safetensors")));
        Assert.Equal(Metrics(full), Metrics(killed));
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from))
        {
            File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        }
    }
}
