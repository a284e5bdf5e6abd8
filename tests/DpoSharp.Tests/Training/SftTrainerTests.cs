using System.Text.Json.Nodes;
using DpoSharp.Cli;
using DpoSharp.Data;
using DpoSharp.Demo;
using DpoSharp.Models;
using DpoSharp.Tokenization;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using DpoSharp.Training.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Training;

/// <summary>Trains models (global torch seed, thread count): runs in the serial torch collection.</summary>
[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class SftTrainerTests
{
    /// <summary>A tiny demo-tokenizer Llama saved as an HF directory, plus prompt/completion rows.</summary>
    internal static (string ModelDir, List<PromptCompletion> Rows) WriteTinyModel(string root, int hidden = 32)
    {
        var data = TruthfulnessDataset.Generate(new TruthfulnessDatasetOptions { MaxNumber = 9, TrainQuestions = 40, EvalQuestions = 6 });
        var dir = Path.Combine(root, "base");
        int vocab = DemoTokenizer.Write(dir, data.Words());
        var options = new DemoOptions { HiddenSize = hidden, Layers = 1, Heads = 2, IntermediateSize = 48 };
        using (var model = ModelLoader.Create(DemoRunner.DemoModelConfig(options, vocab, vocab - 1), CPU, seed: 1))
        {
            DemoRunner.InitializeLikeTorchModules(model, 1);
            ModelSaver.Save(model, dir);
        }

        var rows = data.SftCorpus().Select(e => new PromptCompletion(e.Prompt, TruthfulnessDataset.Completion(e.Completion))).ToList();
        return (dir, rows);
    }

    /// <summary>Mean NLL over completion tokens, each example run alone (no padding), from full log-softmax.</summary>
    private static double IndependentCompletionNll(ICausalLM model, IReadOnlyList<TokenizedCompletion> data)
    {
        using var _ = no_grad();
        double nll = 0;
        long n = 0;
        foreach (var ex in data)
        {
            using var scope = NewDisposeScope();
            var ids = ex.PromptIds.Concat(ex.CompletionIds).ToArray();
            var logits = model.Forward(tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0))[0];
            var lp = nn.functional.log_softmax(logits.to(ScalarType.Float64), -1);
            for (int k = 0; k < ex.CompletionIds.Length; k++)
            {
                int pos = ex.PromptIds.Length + k;
                nll -= lp[pos - 1, ids[pos]].item<double>();
                n++;
            }
        }

        return nll / n;
    }

    [Fact]
    public void EvalLossIsTheCompletionOnlyNllAndTrainingLowersIt()
    {
        using var dir = TestPaths.CreateTempDir();
        var (modelDir, rows) = WriteTinyModel(dir.Path);
        var tok = HfTokenizer.Load(modelDir);
        using var model = ModelLoader.Load(modelDir);
        var tokenized = SftDataset.Tokenize(rows, tok, 64);
        Assert.All(tokenized, t => Assert.Equal(tok.EosTokenId, t.CompletionIds[^1]));
        // Ragged batches: mix in a longer prompt so padding is exercised.
        var mixed = tokenized.Take(7).Append(SftDataset.Tokenize([new PromptCompletion("Which is larger, 3 or 4? Which is smaller, 3 or 4?", " 3")], tok)[0]).ToList();
        var args = new DpoOptions { OutputDir = Path.Combine(dir.Path, "sft-out"), LearningRate = 3e-3, PerDeviceTrainBatchSize = 8, PerDeviceEvalBatchSize = 3, MaxSteps = 40, LoggingSteps = 10, ReportTo = [ReportTarget.None], LrSchedulerType = LrSchedulerType.Constant };
        using var trainer = new SftTrainer(model, args, tokenized, tok.EosTokenId!.Value, mixed);

        double before = trainer.Evaluate()["eval_loss"];
        Assert.Equal(IndependentCompletionNll(model, mixed), before, 4);

        var logged = new List<TrainerLogEntry>();
        trainer.Logged += logged.Add;
        var result = trainer.Train();
        Assert.Equal(40, result.GlobalStep);
        Assert.Equal(4, logged.Count(e => e.Metrics.ContainsKey("loss")));
        double after = trainer.Evaluate()["eval_loss"];
        Assert.Equal(IndependentCompletionNll(model, mixed), after, 4);
        Assert.True(after < before * 0.5, $"eval loss {before} -> {after}");
    }

    [Fact]
    public void SftCommandTrainsAndSavesALoadableModel()
    {
        using var dir = TestPaths.CreateTempDir();
        var (modelDir, rows) = WriteTinyModel(dir.Path);
        var dataset = Path.Combine(dir.Path, "sft.jsonl");
        File.WriteAllLines(dataset, rows.Take(32).Select(r => new JsonObject { ["prompt"] = r.Prompt, ["completion"] = r.Completion }.ToJsonString()));
        var outDir = Path.Combine(dir.Path, "out");
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = DpoSharpCli.Run(["sft", "--model", modelDir, "--dataset", dataset, "--output-dir", outDir, "--max-steps", "6", "--logging-steps", "2",
            "--per-device-train-batch-size", "8", "--learning-rate", "1e-3", "--report-to", "jsonl"], o, e);
        Assert.True(rc == 0, e.ToString() + o);
        var records = JsonlMetricSink.Read(Path.Combine(outDir, "metrics.jsonl"));
        Assert.Equal([2L, 4L, 6L], records.Select(r => r.Step));
        Assert.All(records, r => Assert.True(r.Values["loss"] > 0));
        using var trained = ModelLoader.Load(outDir);
        Assert.True(File.Exists(Path.Combine(outDir, "tokenizer.json")));
        Assert.Equal(HfTokenizer.Load(modelDir).VocabSize, HfTokenizer.Load(outDir).VocabSize);
    }

    [Fact]
    public void SftCommandNamesTheBadRowAndField()
    {
        using var dir = TestPaths.CreateTempDir();
        var (modelDir, _) = WriteTinyModel(dir.Path);
        var dataset = Path.Combine(dir.Path, "bad.jsonl");
        File.WriteAllLines(dataset, ["""{"prompt": "a", "completion": " b"}""", """{"prompt": "a", "answer": " b"}"""]);
        var e = new StringWriter();
        int rc = DpoSharpCli.Run(["sft", "--model", modelDir, "--dataset", dataset, "--output-dir", Path.Combine(dir.Path, "o")], new StringWriter(), e);
        Assert.Equal(2, rc);
        // Rows are named as train names them (issue 10): from 0, with the line.
        Assert.Contains("row 1 (line 2): missing column 'completion'", e.ToString());
    }
}
