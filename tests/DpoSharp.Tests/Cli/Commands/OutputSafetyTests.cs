using DpoSharp.Cli;
using DpoSharp.Models;
using DpoSharp.Training;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Cli.Commands;

/// <summary>
/// User errors across commands: a checkpoint with NaN weights, a fresh run into an output_dir holding an earlier
/// run's checkpoints, a save over an existing model. Each must exit 2 with a message naming what is wrong and leave
/// what was on disk intact.
/// </summary>
public class OutputSafetyTests
{
    private static (int Rc, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var rc = DpoSharpCli.Run(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    /// <summary>A tiny llama checkpoint whose <c>model.norm.weight</c> holds a NaN (as a diverged run would save).</summary>
    private static string WriteNanCheckpoint(string root)
    {
        var good = TinyCheckpoints.Write(Path.Combine(root, "good"), "llama", seed: 2);
        var bad = Path.Combine(root, "nan");
        using (var model = ModelLoader.Load(good))
        using (no_grad())
        {
            var norm = model.Module.named_parameters().Single(p => p.name == "model.norm.weight").parameter;
            norm[3] = tensor(float.NaN);
            ModelSaver.Save(model, bad, copyTokenizerFrom: good);
        }

        return bad;
    }

    [Fact]
    public void NanWeightsAreABadCheckpointForEveryCommand()
    {
        using var tmp = TestPaths.CreateTempDir();
        var bad = WriteNanCheckpoint(tmp.Path);
        var ex = Assert.Throws<DpoSharpException>(() => ModelLoader.Load(bad));
        Assert.Contains("model.norm.weight", ex.Message);
        Assert.Contains("NaN", ex.Message);

        var data = Path.Combine(tmp.Path, "pairs.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 4).Select(i => $$"""{"prompt": "q{{i}}", "chosen": " yes", "rejected": " no"}"""));
        var output = Path.Combine(tmp.Path, "scores.jsonl");
        File.WriteAllText(output, "previous scores\n");

        // Before the check, score wrote null scores and exited 0; generate printed argmax-of-NaN tokens.
        var (rc, _, err) = Run("score", "--model", bad, "--dataset", data, "--output", output);
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains("model.norm.weight", err);
        Assert.DoesNotContain("   at ", err);
        Assert.Equal("previous scores\n", File.ReadAllText(output));

        (rc, _, err) = Run("generate", "--model", bad, "--prompt", "hi", "--max-new-tokens", "2");
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains("NaN", err);

        // train used to blame the learning rate ("the loss became NaN at step 1").
        var outDir = Path.Combine(tmp.Path, "run");
        (rc, _, err) = Run("train", "--model", bad, "--dataset", data, "--output-dir", outDir, "--max-steps", "1", "--report-to", "none");
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains("model.norm.weight", err);
        Assert.False(File.Exists(Path.Combine(outDir, "model.safetensors")));
    }

    [Fact]
    public void FreshRunIntoAnOutputDirWithAnEarlierRunIsRefusedUnlessOverwriteIsAsked()
    {
        using var tmp = TestPaths.CreateTempDir();
        var (model, dataset) = CliTrainTests.WriteTinyJob(tmp.Path, rows: 8);
        var output = Path.Combine(tmp.Path, "out");
        string[] Args(string outputDir, string steps, string saveSteps, params string[] extra) =>
            ["train", "--model", model, "--dataset", dataset, "--output-dir", outputDir, "--max-steps", steps, "--save-steps", saveSteps,
             "--per-device-train-batch-size", "2", "--learning-rate", "1e-3", "--report-to", "jsonl", .. extra];
        Assert.Equal(0, Run(Args(output, "2", "1")).Rc);
        var before = Directory.GetFiles(output, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);

        // A second fresh run with fewer steps would overwrite checkpoint-1 and leave checkpoint-2 of the old run for
        // a later --resume to pick up.
        var (rc, _, err) = Run(Args(output, "1", "1"));
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains("checkpoint-1", err);
        Assert.Contains("--resume", err);
        var after = Directory.GetFiles(output, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        Assert.All(before, kv => Assert.Equal(kv.Value, after[kv.Key]));

        // A folder holding only a model (no checkpoints) is an earlier run as well.
        var modelOnly = Path.Combine(tmp.Path, "model-only");
        Assert.Equal(0, Run(Args(modelOnly, "1", "100")).Rc);
        (rc, _, err) = Run(Args(modelOnly, "1", "100"));
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains("model.safetensors", err);
        Assert.Contains("--overwrite-output-dir", err);

        // --overwrite-output-dir replaces the run: the old checkpoints are gone (none left for a later --resume).
        (rc, _, err) = Run(Args(output, "1", "100", "--overwrite-output-dir"));
        Assert.True(rc == 0, err);
        Assert.Empty(Directory.GetDirectories(output, "checkpoint-*"));
        Assert.Single(File.ReadAllLines(Path.Combine(output, DpoTrainer.MetricsFileName)));
        Assert.NotEqual(before[Path.Combine(output, "model.safetensors")], File.ReadAllBytes(Path.Combine(output, "model.safetensors")));
    }

    [Fact]
    public void ResumeOfAFinishedRunLeavesItsModelUnchanged()
    {
        using var tmp = TestPaths.CreateTempDir();
        var (model, dataset) = CliTrainTests.WriteTinyJob(tmp.Path, rows: 8);
        var output = Path.Combine(tmp.Path, "out");
        string[] args = ["train", "--model", model, "--dataset", dataset, "--output-dir", output, "--max-steps", "2",
            "--save-steps", "1", "--per-device-train-batch-size", "2", "--learning-rate", "1e-3", "--report-to", "jsonl"];
        Assert.Equal(0, Run(args).Rc);
        var saved = File.ReadAllBytes(Path.Combine(output, "model.safetensors"));

        // Nothing left to do: the model is re-saved unchanged.
        var (rc, _, err) = Run([.. args, "--resume"]);
        Assert.True(rc == 0, err);
        Assert.Equal(saved, File.ReadAllBytes(Path.Combine(output, "model.safetensors")));
    }

    [Theory]
    [InlineData("--per-device-train-batch-size", "4", "per_device_train_batch_size 2")]
    [InlineData("--gradient-accumulation-steps", "2", "gradient_accumulation_steps 1")]
    [InlineData("--dataset", "FEWER", "number of training pairs 8")]
    public void ResumeWithAnotherDataLayoutIsRefusedAndLeavesTheRunIntact(string flag, string value, string expected)
    {
        using var tmp = TestPaths.CreateTempDir();
        var (model, dataset) = CliTrainTests.WriteTinyJob(tmp.Path, rows: 8);
        var fewer = Path.Combine(tmp.Path, "fewer.jsonl");
        File.WriteAllLines(fewer, File.ReadAllLines(dataset).Take(6));
        var output = Path.Combine(tmp.Path, "out");
        var common = new Dictionary<string, string>
        {
            ["--model"] = model,
            ["--dataset"] = dataset,
            ["--output-dir"] = output,
            ["--max-steps"] = "3",
            ["--save-steps"] = "1",
            ["--per-device-train-batch-size"] = "2",
            ["--gradient-accumulation-steps"] = "1",
            ["--learning-rate"] = "1e-3",
            ["--report-to"] = "jsonl",
        };
        string[] Args(Dictionary<string, string> d) => ["train", .. d.SelectMany(kv => new[] { kv.Key, kv.Value })];
        Assert.Equal(0, Run(Args(common)).Rc);
        Directory.Delete(Path.Combine(output, "checkpoint-3"), recursive: true);
        var before = Directory.GetFiles(output, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);

        // The checkpoint's data position (epoch 0, micro-batch 2) means other pairs under another layout: the
        // resumed run would silently differ from the uninterrupted one.
        var changed = new Dictionary<string, string>(common) { [flag] = value == "FEWER" ? fewer : value };
        var (rc, _, err) = Run([.. Args(changed), "--resume"]);
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains(expected, err);
        Assert.Contains("checkpoint-2", err);
        var after = Directory.GetFiles(output, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        Assert.All(before, kv => Assert.Equal(kv.Value, after[kv.Key]));

        // The same layout resumes.
        (rc, _, err) = Run([.. Args(common), "--resume"]);
        Assert.True(rc == 0, err);
        Assert.True(Directory.Exists(Path.Combine(output, "checkpoint-3")));
    }

    [Fact]
    public void RowsLongerThanLearnedPositionsOrWithForeignIdsExit2InsteadOfAborting()
    {
        // Before: libtorch's "index out of range in self" aborted the process (exit 134, native stack trace).
        using var tmp = TestPaths.CreateTempDir();
        var gpt2 = TinyCheckpoints.Write(Path.Combine(tmp.Path, "gpt2"), "gpt2", seed: 1);   // n_positions 128, byte tokenizer
        var positions = (int)TinyCheckpoints.Config("gpt2")["n_positions"]!;
        var longData = Path.Combine(tmp.Path, "long.jsonl");
        File.WriteAllLines(longData,
        [
            $$"""{"prompt": "short", "chosen": " a", "rejected": " b"}""",
            $$"""{"prompt": "{{new string('p', 100)}}", "chosen": " {{new string('y', 60)}}", "rejected": " no"}""",
        ]);

        var (rc, _, err) = Run("score", "--model", gpt2, "--dataset", longData, "--output", Path.Combine(tmp.Path, "s.jsonl"));
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains($"{positions} positions", err);
        Assert.Contains("--max-length", err);

        (rc, _, err) = Run("train", "--model", gpt2, "--dataset", longData, "--output-dir", Path.Combine(tmp.Path, "o"), "--max-steps", "1", "--report-to", "none");
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains("162 tokens", err);                   // byte tokens: prompt 100, chosen " y…" 61, EOS
        Assert.Contains("max_length", err);

        // With max_length inside the model's positions the same data trains.
        (rc, _, err) = Run("train", "--model", gpt2, "--dataset", longData, "--output-dir", Path.Combine(tmp.Path, "o2"), "--max-steps", "1", "--report-to", "none",
            "--max-length", positions.ToString(System.Globalization.CultureInfo.InvariantCulture), "--max-prompt-length", "64");
        Assert.True(rc == 0, err);

        // Pre-tokenized ids outside the model's vocabulary.
        var oov = Path.Combine(tmp.Path, "oov.jsonl");
        File.WriteAllLines(oov,
        [
            """{"prompt_input_ids": [1, 2], "chosen_input_ids": [3], "rejected_input_ids": [4]}""",
            $$"""{"prompt_input_ids": [1, 2], "chosen_input_ids": [3], "rejected_input_ids": [{{TinyCheckpoints.DefaultVocabSize + 5}}]}""",
        ]);
        (rc, _, err) = Run("train", "--model", gpt2, "--dataset", oov, "--output-dir", Path.Combine(tmp.Path, "o3"), "--max-steps", "1", "--report-to", "none");
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains($"pair 1: rejected token id {TinyCheckpoints.DefaultVocabSize + 5}", err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void OutputPathsThatAreFoldersOrInputsAreRefusedBeforeAnyWork()
    {
        using var tmp = TestPaths.CreateTempDir();
        var (model, dataset) = CliTrainTests.WriteTinyJob(tmp.Path, rows: 4);
        var original = File.ReadAllBytes(dataset);
        var folder = Directory.CreateDirectory(Path.Combine(tmp.Path, "folder")).FullName;

        // score --output a folder used to crash with an IOException (exit 134) after scoring everything.
        var (rc, _, err) = Run("score", "--model", model, "--dataset", dataset, "--output", folder);
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains("is a folder", err);

        // --output = --dataset used to replace the input with the scores / the normalized copy.
        var sameFile = Path.Combine(Path.GetDirectoryName(dataset)!, ".", Path.GetFileName(dataset));
        (rc, _, err) = Run("score", "--model", model, "--dataset", dataset, "--output", sameFile);
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains("replace the input", err);
        (rc, _, err) = Run("data", "--dataset", dataset, "--output", dataset);
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains("replace the input", err);
        Assert.Equal(original, File.ReadAllBytes(dataset));

        // train --output-dir an existing file used to crash in Directory.CreateDirectory; into the model itself
        // would overwrite the starting model.
        var modelBytes = File.ReadAllBytes(Path.Combine(model, "model.safetensors"));
        (rc, _, err) = Run("train", "--model", model, "--dataset", dataset, "--output-dir", dataset, "--max-steps", "1", "--report-to", "none");
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains("is a file", err);
        (rc, _, err) = Run("train", "--model", model, "--dataset", dataset, "--output-dir", model + "/", "--max-steps", "1", "--report-to", "none");
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains("is the model directory", err);
        Assert.Equal(modelBytes, File.ReadAllBytes(Path.Combine(model, "model.safetensors")));
        Assert.Equal(original, File.ReadAllBytes(dataset));
    }

    [Fact]
    public void TokenizeFileWithInvalidUtf8NamesTheLineInsteadOfTokenizingReplacementCharacters()
    {
        using var tmp = TestPaths.CreateTempDir();
        var model = TinyCheckpoints.Write(Path.Combine(tmp.Path, "m"), "llama");
        var file = Path.Combine(tmp.Path, "in.txt");
        File.WriteAllBytes(file, [(byte)'o', (byte)'k', (byte)'\n', 0xFF, 0xFE, (byte)'x', (byte)'\n']);
        var (rc, stdout, err) = Run("tokenize", "--model", model, "--file", file);
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains("line 2", err);
        Assert.Contains("UTF-8", err);
        Assert.Equal("", stdout);

        // A BOM and CRLF line ends are fine: the byte tokenizer shows exactly the text of each line.
        File.WriteAllBytes(file, [0xEF, 0xBB, 0xBF, (byte)'o', (byte)'k', (byte)'\r', (byte)'\n', (byte)'h', (byte)'i', (byte)'\n']);
        (rc, stdout, err) = Run("tokenize", "--model", model, "--file", file);
        Assert.True(rc == 0, err);
        Assert.Equal(["111 107", "104 105"], stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void GenerationStopsAtTheModelsPositionsForRotaryModels()
    {
        // Before: a huge --max-new-tokens ran (and grew the KV cache) without bound past max_position_embeddings.
        using var tmp = TestPaths.CreateTempDir();
        var model = TinyCheckpoints.Write(Path.Combine(tmp.Path, "m"), "llama", seed: 4);
        using var m = ModelLoader.Load(model);
        var ids = DpoSharp.Generation.TextGenerator.Generate(m, [1, 2, 3], new DpoSharp.Generation.GenerationOptions
        {
            MaxNewTokens = 1_000_000,
            Temperature = 1,
            Seed = 1,
            StopTokenIds = [],
        });
        Assert.Equal(m.Config.MaxPositionEmbeddings - 3, ids.Count);
    }

    [Theory]
    [InlineData("score", "--max-length", "99999999999", "as a whole number")]
    [InlineData("generate", "--temperature", "warm", "as a number")]
    public void UnparsableOptionValuesAreExplainedInWords(string command, string option, string value, string expected)
    {
        string[] args = command == "score"
            ? ["score", "--model", "m", "--dataset", "d.jsonl", "--output", "o.jsonl", option, value]
            : ["generate", "--model", "m", "--prompt", "p", option, value];
        var (rc, _, err) = Run(args);
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains($"'{value}' for option '{option}' {expected}", err);
        Assert.DoesNotContain("System.", err);
    }

    [Fact]
    public void SaveOverAnExistingModelStagesFilesAndRemovesOnlyStaleShards()
    {
        using var tmp = TestPaths.CreateTempDir();
        var dir = TinyCheckpoints.Write(Path.Combine(tmp.Path, "m"), "gpt2", seed: 1, maxShardBytes: 20_000);
        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors.index.json")));

        // A leftover temp entry from a crashed writer used to fail the save after the old weights were deleted.
        Directory.CreateDirectory(Path.Combine(dir, "model.safetensors.tmp"));
        ModelConfig config;
        using (var first = ModelLoader.Load(dir))
        {
            config = first.Config;
        }

        using var other = ModelLoader.Create(config, seed: 7);
        ModelSaver.Save(other, dir);

        Assert.False(Directory.Exists(Path.Combine(dir, ModelSaver.StagingFolderName)));
        Assert.Empty(Directory.GetFiles(dir, "model-*-of-*.safetensors"));            // old shards removed
        Assert.False(File.Exists(Path.Combine(dir, "model.safetensors.index.json")));
        using var loaded = ModelLoader.Load(dir);
        foreach (var (a, b) in loaded.Module.named_parameters().Zip(other.Module.named_parameters()))
        {
            Assert.True(a.parameter.eq(b.parameter).all().item<bool>(), a.name);
        }

        Assert.True(File.Exists(Path.Combine(dir, "tokenizer.json")));                // untouched files stay
    }
}
