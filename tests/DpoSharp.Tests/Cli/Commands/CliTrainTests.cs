using System.Text.Json.Nodes;
using DpoSharp.Models;
using DpoSharp.Tests.Training;
using DpoSharp.Tokenization;
using DpoSharp.Training;
using static DpoSharp.Tests.TestSupport.CliRunner;

namespace DpoSharp.Tests.Cli.Commands;

public class CliTrainTests
{
    /// <summary>A tiny Llama checkpoint with a byte-level tokenizer, and a JSONL preference dataset.</summary>
    internal static (string Model, string Dataset) WriteTinyJob(string root, int rows = 16)
    {
        var model = Path.Combine(root, "model");
        TinyCheckpoints.Write(model, "llama", seed: 3);
        Tokenization.TokenizerBehaviourTests.WriteTinyByteLevel(model);
        File.WriteAllText(Path.Combine(model, "tokenizer_config.json"), """{"bos_token": "<s>", "eos_token": "</s>"}""");
        var dataset = Path.Combine(root, "pairs.jsonl");
        var rng = new Random(5);
        File.WriteAllLines(dataset, Enumerable.Range(0, rows).Select(i =>
        {
            int a = rng.Next(10), b = rng.Next(10);
            return new JsonObject { ["prompt"] = $"{a}+{b}=", ["chosen"] = $"{a + b}", ["rejected"] = $"{a + b + 1 + rng.Next(3)}" }.ToJsonString();
        }));
        return (model, dataset);
    }

    [Fact]
    public void TrainFromConfigWritesMetricsCheckpointsAndALoadableModel()
    {
        using var dir = TestPaths.CreateTempDir();
        var (model, dataset) = WriteTinyJob(dir.Path);
        var output = Path.Combine(dir.Path, "out");
        var config = Path.Combine(dir.Path, "run.yaml");
        File.WriteAllText(config, $"""
            model: {model}
            dataset: {dataset}
            output_dir: {output}
            beta: 0.1
            learning_rate: 1.0e-3
            per_device_train_batch_size: 4
            max_steps: 8
            logging_steps: 2
            save_steps: 3
            max_length: 32
            max_prompt_length: 16
            report_to: [jsonl, tensorboard, png, console]
            """);

        // Flags override the file: 6 steps instead of 8.
        var (rc, stdout, err) = Run("train", "--config", config, "--max-steps", "6", "--device", "cpu");
        Assert.True(rc == 0, err + stdout);
        Assert.Contains("step 6/6", stdout);

        var lines = File.ReadAllLines(Path.Combine(output, DpoTrainer.MetricsFileName));
        Assert.Equal(3, lines.Length);                                   // steps 2, 4, 6
        var last = JsonNode.Parse(lines[^1])!.AsObject();
        Assert.Equal(6, last["step"]!.GetValue<int>());
        foreach (var name in new[] { "loss", "grad_norm", "learning_rate", "epoch", "num_tokens", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected", "logits/chosen", "logits/rejected", "pairs_per_second", "tokens_per_second" })
        {
            Assert.True(last.ContainsKey(name), name);
        }

        // TensorBoard event files and PNG charts (report_to).
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(output, "runs"), "events.out.tfevents.*", SearchOption.AllDirectories));
        var charts = Directory.GetFiles(Path.Combine(output, "charts"), "*.png");
        Assert.NotEmpty(charts);
        foreach (var png in charts)
        {
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(png)[..4]);
        }

        Assert.True(File.Exists(Path.Combine(output, "checkpoint-3", "trainer_state.json")));
        Assert.True(File.Exists(Path.Combine(output, "checkpoint-3", "optimizer.safetensors")));
        Assert.True(File.Exists(Path.Combine(output, "dposharp_config.yaml")));

        // The final model is an HF directory that loads, with the tokenizer next to it.
        using var trained = ModelLoader.Load(output);
        using var original = ModelLoader.Load(model);
        var tok = HfTokenizer.Load(output);
        Assert.Equal(260, tok.VocabSize);
        var moved = trained.Module.named_parameters().Zip(original.Module.named_parameters())
            .Any(p => !p.First.parameter.eq(p.Second.parameter).all().item<bool>());
        Assert.True(moved, "training changed no weight");
    }

    [Fact]
    public void ResumeContinuesFromTheNewestCheckpointAndReproducesTheRun()
    {
        using var dir = TestPaths.CreateTempDir();
        var (model, dataset) = WriteTinyJob(dir.Path, rows: 12);
        string[] Args(string output) => ["train", "--model", model, "--dataset", dataset, "--output-dir", output, "--max-steps", "6",
            "--save-steps", "3", "--logging-steps", "1", "--per-device-train-batch-size", "4", "--learning-rate", "1e-3", "--report-to", "jsonl"];
        var full = Path.Combine(dir.Path, "full");
        var resumed = Path.Combine(dir.Path, "resumed");
        Assert.Equal(0, Run(Args(full)).Rc);
        Assert.Equal(0, Run(Args(resumed)).Rc);

        // Pretend the second run died after checkpoint 3: drop what came later.
        Directory.Delete(Path.Combine(resumed, "checkpoint-6"), recursive: true);
        File.Delete(Path.Combine(resumed, "model.safetensors"));
        var (rc, _, err) = Run([.. Args(resumed), "--resume"]);
        Assert.True(rc == 0, err);
        Assert.Equal(
            DpoTrainerTests.StableMetrics(Path.Combine(full, DpoTrainer.MetricsFileName)),
            DpoTrainerTests.StableMetrics(Path.Combine(resumed, DpoTrainer.MetricsFileName)));
        Assert.Equal(File.ReadAllBytes(Path.Combine(full, "model.safetensors")), File.ReadAllBytes(Path.Combine(resumed, "model.safetensors")));
    }

    [Fact]
    public void BadValuesAndMissingInputsExitWith2()
    {
        using var dir = TestPaths.CreateTempDir();
        var (model, dataset) = WriteTinyJob(dir.Path, rows: 4);
        var (rc, _, err) = Run("train", "--model", model, "--dataset", dataset, "--beta", "-1", "--output-dir", Path.Combine(dir.Path, "o"));
        Assert.Equal(2, rc);
        Assert.Contains("beta", err);

        (rc, _, err) = Run("train", "--model", model, "--dataset", dataset, "--loss-type", "sigmoidd", "--output-dir", Path.Combine(dir.Path, "o"));
        Assert.Equal(2, rc);
        Assert.Contains("sigmoid", err);

        (rc, _, err) = Run("train", "--model", model, "--output-dir", Path.Combine(dir.Path, "o"));
        Assert.Equal(2, rc);
        Assert.Contains("dataset", err);

        (rc, _, err) = Run("train", "--config", Path.Combine(dir.Path, "absent.yaml"));
        Assert.Equal(2, rc);
        Assert.Contains("absent.yaml", err);
    }
}
