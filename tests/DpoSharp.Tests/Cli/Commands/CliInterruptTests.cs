using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using DpoSharp.Tests.Training;
using DpoSharp.Training;

namespace DpoSharp.Tests.Cli.Commands;

/// <summary>
/// Ctrl-C and SIGTERM on real child processes: the run finishes its step, checkpoints it, prints how to continue and
/// exits 130; the printed command continues to the same weights as an uninterrupted run; a second Ctrl-C exits at once.
/// </summary>
public partial class CliInterruptTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    [PosixFact]
    public void CtrlCCheckpointsTheStepPrintsTheResumeCommandAndThatCommandFinishesTheRunBitExactly()
    {
        using var dir = TestPaths.CreateTempDir();
        var (model, dataset) = CliTrainTests.WriteTinyJob(dir.Path, rows: 16);
        string[] Args(string output) => ["train", "--model", model, "--dataset", dataset, "--output-dir", output, "--max-steps", "30",
            "--save-steps", "50", "--logging-steps", "2", "--per-device-train-batch-size", "4", "--learning-rate", "1e-3", "--report-to", "jsonl", "--device", "cpu"];

        // The uninterrupted run and the interrupted one run side by side (one thread each).
        var full = Path.Combine(dir.Path, "full");
        var stopped = Path.Combine(dir.Path, "stopped");
        int rc;
        string stdout, stderr, err;
        using (var reference = CliProcess.Start(Args(full)))
        using (var child = CliProcess.Start(Args(stopped)))
        {
            // Ctrl-C once the run has logged a few steps (metrics.jsonl grows every 2 steps).
            Assert.True(child.WaitUntil(() => MetricLines(stopped) >= 2, Patience), "the run logged nothing: " + child.Err);
            Assert.False(child.HasExited, "the run finished before it could be interrupted; give it more steps");
            child.Signal(CliProcess.SigInt);
            Assert.True(child.WaitForExit(Patience), "the run did not stop after Ctrl-C");
            (rc, stdout, stderr) = (child.ExitCode, child.Out, child.Err);
            Assert.True(reference.WaitForExit(Patience));
            Assert.True(reference.ExitCode == 0, reference.Err);
        }

        Assert.True(rc == 130, $"exit {rc}\n{stdout}\n{stderr}");
        Assert.Contains("stopping after the current step", stderr);
        var m = InterruptedLine().Match(stderr);
        Assert.True(m.Success, stderr);
        int step = int.Parse(m.Groups["step"].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(step, 4, 29);
        var checkpoint = Path.Combine(stopped, $"checkpoint-{step}");
        Assert.True(File.Exists(Path.Combine(checkpoint, "trainer_state.json")), stderr);
        Assert.Contains($"saved {checkpoint}", stderr);
        Assert.False(File.Exists(Path.Combine(stopped, "model.safetensors")));

        // The printed command is the one that was run, with --resume added once.
        var command = m.Groups["command"].Value;
        Assert.Equal("dposharp " + string.Join(' ', Args(stopped)) + " --resume", command);
        // As if a second Ctrl-C had cut the writing of the next checkpoint short: resume says it skips it, and why.
        Directory.CreateDirectory(Path.Combine(stopped, $"checkpoint-{step + 1}.tmp"));
        (rc, stdout, err) = CliProcess.Run([.. ShellWords(command).Skip(1)]);
        Assert.True(rc == 0, err);
        Assert.Contains($"resuming from checkpoint-{step} (step {step}); skipped checkpoint-{step + 1}.tmp: incomplete: the run stopped while writing it (.tmp)", stdout);
        Assert.Equal(File.ReadAllBytes(Path.Combine(full, "model.safetensors")), File.ReadAllBytes(Path.Combine(stopped, "model.safetensors")));

        // The metrics match too, except the first record after the stop: its logging window lost the steps before
        // the stop (as transformers' Trainer, which restarts the window on resume).
        var expected = MetricsBySteps(full);
        var resumed = MetricsBySteps(stopped);
        Assert.Equal(expected.Keys, resumed.Keys);
        int firstAfterStop = expected.Keys.First(s => s > step);
        Assert.All(expected.Where(kv => kv.Key != firstAfterStop || step % 2 == 0), kv => Assert.Equal(kv.Value, resumed[kv.Key]));
    }

    /// <summary>metrics.jsonl without wall-clock metrics, by step.</summary>
    private static SortedDictionary<int, string> MetricsBySteps(string output) => new(
        DpoTrainerTests.StableMetrics(Path.Combine(output, DpoTrainer.MetricsFileName))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .ToDictionary(line => JsonNode.Parse(line)!["step"]!.GetValue<int>()));

    [PosixFact]
    public void ASecondCtrlCExitsAtOnce()
    {
        // Slow steps (64 micro-batches each) so that the second Ctrl-C lands while a step is running.
        using var dir = TestPaths.CreateTempDir();
        var (model, dataset) = CliTrainTests.WriteTinyJob(dir.Path, rows: 64);
        var output = Path.Combine(dir.Path, "out");
        using var child = CliProcess.Start("train", "--model", model, "--dataset", dataset, "--output-dir", output, "--max-steps", "40",
            "--save-steps", "1", "--per-device-train-batch-size", "1", "--gradient-accumulation-steps", "64", "--learning-rate", "1e-3",
            "--report-to", "jsonl", "--device", "cpu");
        Assert.True(child.WaitUntil(() => Directory.Exists(Path.Combine(output, "checkpoint-1")), Patience), "no checkpoint-1: " + child.Err);
        child.Signal(CliProcess.SigInt);
        Assert.True(child.WaitUntil(() => child.Err.Contains("stopping after the current step", StringComparison.Ordinal), Patience), child.Err);
        child.Signal(CliProcess.SigInt);
        Assert.True(child.WaitForExit(Patience));
        Assert.True(child.ExitCode == 130, $"exit {child.ExitCode}\n{child.Out}\n{child.Err}");
        Assert.Contains("Ctrl-C again: stopping at once", child.Err);
        Assert.DoesNotContain("continue with", child.Err);
        Assert.False(File.Exists(Path.Combine(output, "model.safetensors")));
    }

    [PosixFact]
    public void SigtermStopsSftAfterTheStepAndPrintsTheSftResumeCommand()
    {
        using var dir = TestPaths.CreateTempDir();
        var model = TinyCheckpoints.Write(Path.Combine(dir.Path, "model"), "llama", seed: 11);
        var dataset = Path.Combine(dir.Path, "sft.jsonl");
        File.WriteAllLines(dataset, Enumerable.Range(0, 24).Select(i => new JsonObject { ["prompt"] = $"{i % 10}+1=", ["completion"] = $"{i % 10 + 1}" }.ToJsonString()));
        var output = Path.Combine(dir.Path, "sft out");
        using var child = CliProcess.Start("sft", "--model", model, "--dataset", dataset, "--output-dir", output, "--max-steps", "200",
            "--save-steps", "1000", "--logging-steps", "2", "--per-device-train-batch-size", "4", "--learning-rate", "1e-3", "--report-to", "jsonl");
        Assert.True(child.WaitUntil(() => MetricLines(output) >= 2, Patience), "the run logged nothing: " + child.Err);
        Assert.False(child.HasExited, "the run finished before it could be stopped; give it more steps");
        child.Signal(CliProcess.SigTerm);
        Assert.True(child.WaitForExit(Patience));
        Assert.True(child.ExitCode == 130, $"exit {child.ExitCode}\n{child.Out}\n{child.Err}");
        var m = InterruptedLine().Match(child.Err);
        Assert.True(m.Success, child.Err);
        int step = int.Parse(m.Groups["step"].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(File.Exists(Path.Combine(output, $"checkpoint-{step}", "trainer_state.json")), child.Err);

        // The output folder has a space: the command quotes it, and says sft.
        Assert.StartsWith($"dposharp sft --model {model} --dataset {dataset} --output-dir '{output}' ", m.Groups["command"].Value, StringComparison.Ordinal);
        Assert.EndsWith(" --report-to jsonl --resume", m.Groups["command"].Value, StringComparison.Ordinal);
    }

    [Fact]
    public void AStopBeforeTheFirstStepSavesNothingAndTheDemoStopsBetweenItsStages()
    {
        // The token DpoSharpCli.Run takes stands for Ctrl-C in-process.
        using var dir = TestPaths.CreateTempDir();
        var (model, dataset) = CliTrainTests.WriteTinyJob(dir.Path, rows: 4);
        using var stop = new CancellationTokenSource();
        stop.Cancel();
        var o = new StringWriter();
        var e = new StringWriter();
        var output = Path.Combine(dir.Path, "out");
        int rc = DpoSharp.Cli.DpoSharpCli.Run(["train", "--model", model, "--dataset", dataset, "--output-dir", output, "--max-steps", "3", "--report-to", "jsonl"], o, e, stop.Token);
        Assert.True(rc == 130, e.ToString());
        Assert.Contains("interrupted before the first optimizer step; nothing was saved.", e.ToString());
        Assert.Empty(Directory.Exists(output) ? Directory.GetDirectories(output, "checkpoint-*") : []);

        e = new StringWriter();
        rc = DpoSharp.Cli.DpoSharpCli.Run(["demo", "--quick", "--output-dir", Path.Combine(dir.Path, "demo")], o, e, stop.Token);
        Assert.True(rc == 130, e.ToString());
        Assert.Contains("interrupted during the demo's data stage; the demo does not resume", e.ToString());
    }

    private static int MetricLines(string output)
    {
        var path = Path.Combine(output, DpoTrainer.MetricsFileName);
        try
        {
            return File.Exists(path) ? File.ReadAllLines(path).Length : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>Splits a POSIX shell command line (plain words and single-quoted ones, as the CLI prints them).</summary>
    private static List<string> ShellWords(string command)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        bool inWord = false, quoted = false, escaped = false;
        foreach (var c in command)
        {
            if (escaped)
            {
                word.Append(c);
                escaped = false;
            }
            else if (quoted)
            {
                quoted = c != '\'';
                if (quoted)
                {
                    word.Append(c);
                }
            }
            else if (c == ' ')
            {
                if (inWord)
                {
                    words.Add(word.ToString());
                    word.Clear();
                    inWord = false;
                }
            }
            else
            {
                inWord = true;
                quoted = c == '\'';
                escaped = c == '\\';
                if (!quoted && !escaped)
                {
                    word.Append(c);
                }
            }
        }

        if (inWord)
        {
            words.Add(word.ToString());
        }

        return words;
    }

    [GeneratedRegex(@"^interrupted at step (?<step>\d+); continue with: (?<command>.+)$", RegexOptions.Multiline)]
    private static partial Regex InterruptedLine();
}
