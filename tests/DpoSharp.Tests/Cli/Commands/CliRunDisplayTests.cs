using System.Text.Json.Nodes;
using DpoSharp.Training;
using static DpoSharp.Tests.TestSupport.CliRunner;

namespace DpoSharp.Tests.Cli.Commands;

/// <summary>What train and sft print about a run: progress and metrics.jsonl whatever report_to names (unless none),
/// and which checkpoint a resumed run continues from (for train, also in CliInterruptTests, after a real Ctrl-C).</summary>
public class CliRunDisplayTests
{
    [Fact]
    public void ReportToTensorboardKeepsMetricsJsonlAndTheProgressAndNoneTurnsBothOff()
    {
        using var dir = TestPaths.CreateTempDir();
        var (model, dataset) = CliTrainTests.WriteTinyJob(dir.Path, rows: 8);
        string[] Args(string output, string reportTo) => ["train", "--model", model, "--dataset", dataset, "--output-dir", output, "--max-steps", "4",
            "--logging-steps", "2", "--per-device-train-batch-size", "4", "--learning-rate", "1e-3", "--report-to", reportTo, "--device", "cpu"];

        // As TRL users write it: report_to selects integrations; the jsonl log and the console progress stay on.
        var tb = Path.Combine(dir.Path, "tb");
        var (rc, stdout, err) = Run(Args(tb, "tensorboard"));
        Assert.True(rc == 0, err + stdout);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(tb, DpoTrainer.MetricsFileName)).Length);
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(tb, "runs"), "events.out.tfevents.*", SearchOption.AllDirectories));
        Assert.Matches(@"(?m)^step 2/4  loss .* pairs/s  elapsed \d+:\d\d:\d\d  eta \d+:\d\d:\d\d$", stdout);
        Assert.Contains("step 4/4  loss", stdout);

        // report_to none: no metric sink, no progress lines; the run still trains and saves.
        var none = Path.Combine(dir.Path, "none");
        (rc, stdout, err) = Run(Args(none, "none"));
        Assert.True(rc == 0, err + stdout);
        Assert.False(File.Exists(Path.Combine(none, DpoTrainer.MetricsFileName)));
        Assert.DoesNotContain("step 2/4", stdout);
        Assert.True(File.Exists(Path.Combine(none, "model.safetensors")));
    }

    [Fact]
    public void SftResumeSaysWhichCheckpoint()
    {
        using var dir = TestPaths.CreateTempDir();
        var model = TinyCheckpoints.Write(Path.Combine(dir.Path, "model"), "llama", seed: 11);
        var dataset = Path.Combine(dir.Path, "sft.jsonl");
        File.WriteAllLines(dataset, Enumerable.Range(0, 8).Select(i => new JsonObject { ["prompt"] = $"{i}+1=", ["completion"] = $"{i + 1}" }.ToJsonString()));
        var output = Path.Combine(dir.Path, "out");
        string[] args = ["sft", "--model", model, "--dataset", dataset, "--output-dir", output, "--max-steps", "4", "--save-steps", "2",
            "--per-device-train-batch-size", "4", "--learning-rate", "1e-3", "--report-to", "jsonl"];
        Assert.Equal(0, Run(args).Rc);

        // checkpoint-4 without its trainer_state.json is incomplete too.
        File.Delete(Path.Combine(output, "checkpoint-4", "trainer_state.json"));
        var (rc, stdout, err) = Run([.. args, "--resume"]);
        Assert.True(rc == 0, err + stdout);
        Assert.Contains("resuming from checkpoint-2 (step 2); skipped checkpoint-4: incomplete: it has no trainer_state.json", stdout);
        Assert.Matches(@"(?m)^step 4/4  loss .* samples/s|^step 4/4  loss .*elapsed", stdout);
    }
}
