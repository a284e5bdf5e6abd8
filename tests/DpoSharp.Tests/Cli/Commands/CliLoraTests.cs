using System.Security.Cryptography;
using System.Text.Json.Nodes;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using static DpoSharp.Tests.TestSupport.CliRunner;

namespace DpoSharp.Tests.Cli.Commands;

/// <summary><c>dposharp train/sft --use-peft</c> (alias <c>--lora</c>), <c>--adapter</c>, and the pre-flight memory check.</summary>
[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class CliLoraTests
{
    private static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    private static string[] TrainArgs(string model, string dataset, string output, params string[] more) =>
    [
        "train", "--model", model, "--dataset", dataset, "--output-dir", output, "--device", "cpu",
        "--per-device-train-batch-size", "4", "--learning-rate", "1e-2", "--max-steps", "4", "--save-steps", "2",
        "--logging-steps", "2", "--max-length", "32", "--max-prompt-length", "16", "--report-to", "jsonl", .. more,
    ];

    [Fact]
    public void LoraTrainWritesOnlyAdaptersKeepsTheBaseResumesBitExactlyAndContinuesFromAnAdapter()
    {
        using var dir = TestPaths.CreateTempDir();
        var (model, dataset) = CliTrainTests.WriteTinyJob(dir.Path);
        var baseSha = Sha(Path.Combine(model, "model.safetensors"));
        var output = Path.Combine(dir.Path, "out");

        // --lora and --lora-target are aliases of use_peft and lora_target_modules.
        var (rc, stdout, err) = Run(TrainArgs(model, dataset, output, "--lora", "--lora-r", "4", "--lora-alpha", "8", "--lora-target", "all-linear"));
        Assert.True(rc == 0, err + stdout);
        Assert.Contains("trainable parameters:", stdout);
        Assert.Contains("reference: adapters disabled", System.Text.RegularExpressions.Regex.Replace(stdout, @"\s+", " "));   // the line wraps
        Assert.Contains("memory estimate:", stdout);
        Assert.Equal(baseSha, Sha(Path.Combine(model, "model.safetensors")));
        foreach (var folder in new[] { output, Path.Combine(output, "checkpoint-2") })
        {
            Assert.True(File.Exists(Path.Combine(folder, PeftAdapter.WeightsFileName)), folder);
            Assert.False(File.Exists(Path.Combine(folder, "model.safetensors")), folder);
        }

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(output, PeftAdapter.ConfigFileName)))!;
        Assert.Equal(4, config["r"]!.GetValue<int>());
        Assert.Equal(8, config["lora_alpha"]!.GetValue<double>());
        Assert.Equal(model, config["base_model_name_or_path"]!.GetValue<string>());
        Assert.Contains("use_peft: true", File.ReadAllText(Path.Combine(output, "dposharp_config.yaml")));

        // The adapters moved: base + adapter scores differently from the base.
        using (var trained = ModelLoader.Load(model))
        {
            var targets = PeftAdapter.Load(trained, output);
            Assert.Equal(trained.LinearLayers().Count, targets.Count);                 // all-linear
            Assert.All(targets, t => Assert.True(t.Adapter.B.abs().sum().item<float>() > 0, t.Path));
        }

        // Resume from checkpoint-2 in another folder: the same final adapter, bit for bit.
        var resumed = Path.Combine(dir.Path, "resumed");
        Directory.CreateDirectory(resumed);
        CopyDirectory(Path.Combine(output, "checkpoint-2"), Path.Combine(resumed, "checkpoint-2"));
        (rc, stdout, err) = Run(TrainArgs(model, dataset, resumed, "--use-peft", "--lora-r", "4", "--lora-alpha", "8", "--lora-target-modules", "all-linear", "--resume"));
        Assert.True(rc == 0, err + stdout);
        Assert.Equal(Sha(Path.Combine(output, PeftAdapter.WeightsFileName)), Sha(Path.Combine(resumed, PeftAdapter.WeightsFileName)));

        // --adapter continues from the trained adapter (its config sets r and the targets).
        var more = Path.Combine(dir.Path, "more");
        (rc, stdout, err) = Run(TrainArgs(model, dataset, more, "--adapter", output));
        Assert.True(rc == 0, err + stdout);
        Assert.Equal(4, JsonNode.Parse(File.ReadAllText(Path.Combine(more, PeftAdapter.ConfigFileName)))!["r"]!.GetValue<int>());
        Assert.NotEqual(Sha(Path.Combine(output, PeftAdapter.WeightsFileName)), Sha(Path.Combine(more, PeftAdapter.WeightsFileName)));

        // A missing adapter folder is bad input, before anything is written.
        var none = Path.Combine(dir.Path, "none");
        (rc, _, err) = Run(TrainArgs(model, dataset, none, "--adapter", Path.Combine(dir.Path, "no-such-adapter")));
        Assert.Equal(2, rc);
        Assert.Contains("no-such-adapter", err);
        Assert.False(Directory.Exists(none));
    }

    [Fact]
    public void LoraWithABf16BaseAndSftWithLoraTrain()
    {
        using var dir = TestPaths.CreateTempDir();
        var (model, dataset) = CliTrainTests.WriteTinyJob(dir.Path);
        var output = Path.Combine(dir.Path, "bf16");
        var (rc, stdout, err) = Run(TrainArgs(model, dataset, output, "--use-peft", "--torch-dtype", "bfloat16", "--gradient-checkpointing", "false"));
        Assert.True(rc == 0, err + stdout);
        var metrics = File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.All(metrics, m => Assert.True(double.IsFinite(m["loss"]!.GetValue<double>())));
        using (var loaded = ModelLoader.Load(model))
        {
            PeftAdapter.Load(loaded, output);       // adapters are fp32, whatever the base's dtype was
        }

        var sftData = Path.Combine(dir.Path, "sft.jsonl");
        File.WriteAllLines(sftData, Enumerable.Range(0, 8).Select(i => new JsonObject { ["prompt"] = $"{i}+1=", ["completion"] = $"{i + 1}" }.ToJsonString()));
        var sftOut = Path.Combine(dir.Path, "sft");
        (rc, stdout, err) = Run("sft", "--model", model, "--dataset", sftData, "--output-dir", sftOut, "--use-peft", "--max-steps", "2",
            "--per-device-train-batch-size", "4", "--report-to", "jsonl", "--device", "cpu");
        Assert.True(rc == 0, err + stdout);
        Assert.True(File.Exists(Path.Combine(sftOut, PeftAdapter.WeightsFileName)));
        Assert.False(File.Exists(Path.Combine(sftOut, "model.safetensors")));
        Assert.Contains("trainable parameters:", stdout);
    }

    [Theory]
    [InlineData("train")]
    [InlineData("sft")]
    public void ARunThatCannotFitStopsBeforeLoadingWeightsWithTheEstimateAndTheFixes(string command)
    {
        using var dir = TestPaths.CreateTempDir();
        var (model, dataset) = CliTrainTests.WriteTinyJob(dir.Path);

        // config.json claims a model of ≈ 4·10^12 parameters; the weights file is the tiny one, never read.
        var configPath = Path.Combine(model, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config["hidden_size"] = 16384;
        config["intermediate_size"] = 65536;
        config["num_hidden_layers"] = 1000;
        config["num_attention_heads"] = 128;
        config["num_key_value_heads"] = 128;
        File.WriteAllText(configPath, config.ToJsonString());
        if (command == "sft")
        {
            dataset = Path.Combine(dir.Path, "sft.jsonl");
            File.WriteAllLines(dataset, ["""{"prompt": "1+1=", "completion": "2"}"""]);
        }

        var output = Path.Combine(dir.Path, "out");
        var started = DateTime.UtcNow;
        var (rc, stdout, err) = Run(command, "--model", model, "--dataset", dataset, "--output-dir", output, "--device", "cpu", "--max-steps", "1");
        Assert.True(rc == 2, err + stdout);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(60));
        Assert.Contains("MemAvailable", err);
        foreach (var part in new[] { "weights", "gradients", "optimizer state", "activations", "--use-peft", "--gradient-checkpointing", "--per-device-train-batch-size" })
        {
            Assert.Contains(part, err);
        }

        Assert.False(Directory.Exists(output));
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from))
        {
            File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        }

        foreach (var d in Directory.GetDirectories(from))
        {
            CopyDirectory(d, Path.Combine(to, Path.GetFileName(d)));
        }
    }
}
