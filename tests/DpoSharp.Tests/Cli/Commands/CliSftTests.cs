using System.Text.Json.Nodes;
using DpoSharp.Cli.Options;
using DpoSharp.Training;
using DpoSharp.Training.Metrics;
using static DpoSharp.Tests.TestSupport.CliRunner;

namespace DpoSharp.Tests.Cli.Commands;

/// <summary>
/// Issue 10, item 3: <c>dposharp sft</c> has its own options (TRL's <c>SFTConfig</c>) and saves only them, takes them
/// from a config file unless a flag overrides them, reads a dataset folder (eval from its test split), and refuses an
/// output_dir holding an earlier run as <c>train</c> does.
/// </summary>
public class CliSftTests
{
    [Fact]
    public void SftTrainsFromADatasetFolderWithItsOwnOptionsAndRefusesAnEarlierRun()
    {
        using var dir = TestPaths.CreateTempDir();
        var (model, rows) = DpoSharp.Tests.Training.SftTrainerTests.WriteTinyModel(dir.Path);
        var data = Directory.CreateDirectory(Path.Combine(dir.Path, "sft-data")).FullName;
        File.WriteAllLines(Path.Combine(data, "train.jsonl"), rows.Take(16).Select(r => new JsonObject { ["prompt"] = r.Prompt, ["completion"] = r.Completion }.ToJsonString()));
        File.WriteAllLines(Path.Combine(data, "test.jsonl"), rows.Skip(16).Take(4).Select(r => new JsonObject { ["prompt"] = r.Prompt, ["completion"] = r.Completion }.ToJsonString()));
        var output = Path.Combine(dir.Path, "out");
        var config = Path.Combine(dir.Path, "sft.yaml");
        File.WriteAllText(config, $"""
            model: {model}
            dataset: {data}
            output_dir: {output}
            completion_only_loss: false
            disable_dropout: false
            max_steps: 4
            logging_steps: 2
            eval_strategy: steps
            eval_steps: 2
            per_device_train_batch_size: 4
            report_to: [jsonl]
            """);

        // Flags (one in TRL's spelling) override the file; the rest comes from it.
        var (rc, stdout, err) = Run("sft", "--config", config, "--learning_rate", "1e-3", "--max-steps", "2", "--device", "cpu");
        Assert.True(rc == 0, err + stdout);
        Assert.Contains("(16 rows)", stdout);
        var records = JsonlMetricSink.Read(Path.Combine(output, "metrics.jsonl"));
        Assert.Contains(records, r => r.Values.ContainsKey("eval_loss"));   // the folder's test split
        Assert.Equal(2, records.Max(r => r.Step));

        // The saved config records SFT's options only, with the values the run used.
        var savedPath = Path.Combine(output, "dposharp_config.yaml");
        var saved = OptionBinder.LoadFile<SftOptions>(savedPath);
        Assert.Equal((1e-3, 2, false, false), (saved.LearningRate, saved.MaxSteps, saved.CompletionOnlyLoss, saved.DisableDropout));
        var keys = File.ReadAllLines(savedPath).Select(l => l[..l.IndexOf(':', StringComparison.Ordinal)]).ToList();
        Assert.Equal(OptionBinder.Options<SftOptions>().Select(o => o.Name), keys);
        Assert.DoesNotContain("beta", keys);

        // A second fresh run into the same folder is refused, before anything is written.
        var before = File.GetLastWriteTimeUtc(Path.Combine(output, "model.safetensors"));
        (rc, _, err) = Run("sft", "--config", config, "--device", "cpu");
        Assert.Equal(2, rc);
        Assert.Contains("already holds an earlier run", err);
        Assert.Contains("--resume", err);
        Assert.Equal(before, File.GetLastWriteTimeUtc(Path.Combine(output, "model.safetensors")));
    }

    [Theory]
    [InlineData("--beta", "0.1")]
    [InlineData("--loss-type", "sigmoid")]
    [InlineData("--ref-model", "m")]
    public void PreferenceOptionsAreNotSftOptions(string flag, string value)
    {
        var (rc, _, err) = Run("sft", "--model", "m", "--dataset", "d", flag, value);
        Assert.Equal(2, rc);
        Assert.Contains($"unknown option '{flag}'", err);
    }

    [Fact]
    public void MissingModelOrDatasetIsNamedBeforeAnyWork()
    {
        using var dir = TestPaths.CreateTempDir();
        var output = Path.Combine(dir.Path, "out");
        var (rc, _, err) = Run("sft", "--learning-rate", "1e-4", "--output-dir", output);
        Assert.Equal(2, rc);
        Assert.Contains("sft: --model and --dataset are not set", err);
        Assert.False(Directory.Exists(output));
    }
}
