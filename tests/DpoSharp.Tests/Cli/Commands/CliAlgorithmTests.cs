using System.Text.Json.Nodes;
using DpoSharp.Data;
using DpoSharp.Losses;
using DpoSharp.Models;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using DpoSharp.Training.Objectives;
using static DpoSharp.Tests.TestSupport.CliRunner;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Cli.Commands;

/// <summary><c>dposharp train --loss-type orpo|simpo|cpo</c>, <c>--algorithm kto</c> and <c>dposharp score</c> with the
/// reference-free losses, end to end on tiny checkpoints.</summary>
[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class CliAlgorithmTests
{
    private static string[] TrainArgs(string model, string dataset, string output, params string[] more) =>
    [
        "train", "--model", model, "--dataset", dataset, "--output-dir", output, "--device", "cpu",
        "--per-device-train-batch-size", "4", "--learning-rate", "1e-2", "--max-steps", "3", "--save-steps", "100",
        "--logging-steps", "1", "--max-length", "32", "--max-prompt-length", "16", "--report-to", "jsonl", .. more,
    ];

    private static List<JsonObject> ReadRows(string path) =>
        File.ReadAllLines(path).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();

    [Theory]
    [InlineData("orpo")]
    [InlineData("simpo")]
    [InlineData("cpo")]
    public void TrainWithAReferenceFreeLossLogsItsMetricsAndRefusesARefModel(string lossType)
    {
        using var dir = TestPaths.CreateTempDir();
        var (model, dataset) = CliTrainTests.WriteTinyJob(dir.Path);
        var output = Path.Combine(dir.Path, "out");
        var (rc, stdout, err) = Run(TrainArgs(model, dataset, output, "--loss-type", lossType, "--simpo-gamma", "0.3", "--cpo-alpha", "0.5"));
        Assert.True(rc == 0, err + stdout);
        Assert.Contains($"loss {lossType}", stdout);
        var logs = ReadRows(Path.Combine(output, "metrics.jsonl")).Where(o => o.ContainsKey("loss")).ToList();
        Assert.Equal(3, logs.Count);
        Assert.All(logs, o => Assert.True(o.ContainsKey("nll_loss") && o.ContainsKey("rewards/margins")));
        Assert.Equal(lossType == "orpo", logs[0].ContainsKey("log_odds_ratio"));
        Assert.Equal(lossType == "orpo", logs[0].ContainsKey("log_odds_chosen"));
        var config = File.ReadAllText(Path.Combine(output, "dposharp_config.yaml"));
        Assert.Contains("simpo_gamma: 0.3", config);
        Assert.Contains("cpo_alpha: 0.5", config);

        (rc, _, err) = Run(TrainArgs(model, dataset, Path.Combine(dir.Path, "refused"), "--loss-type", lossType, "--ref-model", model));
        Assert.Equal(2, rc);
        Assert.Contains("no reference model", err);
    }

    [Theory]
    [InlineData("orpo")]
    [InlineData("simpo")]
    [InlineData("cpo")]
    public void ScoreRowsOfReferenceFreeLossesAreEachPairsTrainingLoss(string lossType)
    {
        using var dir = TestPaths.CreateTempDir();
        var policy = TinyCheckpoints.Write(Path.Combine(dir.Path, "policy"), "gpt2", seed: 1);
        var data = Path.Combine(dir.Path, "pairs.jsonl");
        TokenizedPair[] pairs =
        [
            new([1, 2, 3], [4, 5], [6, 7, 8]),
            new([9], [10, 11, 12, 13], [14]),
            new([20, 21], [22], [23, 24]),
        ];
        File.WriteAllLines(data, pairs.Select(p => new JsonObject
        {
            ["prompt_input_ids"] = new JsonArray([.. p.PromptIds.Select(x => (JsonNode)x)]),
            ["chosen_input_ids"] = new JsonArray([.. p.ChosenIds.Select(x => (JsonNode)x)]),
            ["rejected_input_ids"] = new JsonArray([.. p.RejectedIds.Select(x => (JsonNode)x)]),
        }.ToJsonString()));
        var output = Path.Combine(dir.Path, "scores.jsonl");
        var (rc, _, err) = Run("score", "--model", policy, "--dataset", data, "--output", output, "--batch-size", "2",
            "--loss-type", lossType, "--beta", "0.5", "--simpo-gamma", "0.2", "--cpo-alpha", "0.7");
        Assert.True(rc == 0, err);
        var rows = ReadRows(output);
        Assert.All(rows, r => Assert.Null(r["ref_chosen_logps"]));

        // The training objective on the same model: each pair alone gives the row's loss and rewards; the batch of
        // all pairs is the rows' mean once each row's own NLL is replaced by its share of the batch NLL.
        using var model = ModelLoader.Load(policy);
        var options = new DpoOptions { LossType = [lossType], Beta = 0.5, SimpoGamma = 0.2, CpoAlpha = 0.7 };
        var collator = new PreferenceCollator(0);
        using var objective = new DpoObjective(model, null, options, pairs, null, collator);
        objective.Begin(null);
        model.Module.eval();
        double nllWeight = lossType == "orpo" ? 1 : 0.7;
        double meanChosenTokens = pairs.Average(p => p.ChosenIds.Length);
        double expectedBatch = 0;
        using (no_grad())
        {
            for (int i = 0; i < pairs.Length; i++)
            {
                double D(string k) => rows[i][k]!.GetValue<double>();
                using var scope = NewDisposeScope();
                var o = objective.Compute(collator.Collate([pairs[i]]), DataSplit.Train);
                Assert.Equal(D("loss"), o.LossSum.item<float>(), 4);
                var m = o.Statistics.ToMetrics("");
                Assert.Equal(D("chosen_reward"), m["rewards/chosen"], 4);
                Assert.Equal(D("rejected_reward"), m["rewards/rejected"], 4);
                double sc = D("chosen_logps");
                int nc = pairs[i].ChosenIds.Length;
                expectedBatch += D("loss") - (nllWeight * -sc / nc) + (nllWeight * -sc / meanChosenTokens);
            }

            using var all = NewDisposeScope();
            var batch = objective.Compute(collator.Collate(pairs), DataSplit.Train);
            Assert.Equal(expectedBatch, batch.LossSum.item<float>(), 3);
        }
    }

    [Fact]
    public void TrainAlgorithmKtoRunsOnUnpairedAndOnPairedData()
    {
        using var dir = TestPaths.CreateTempDir();
        var (model, pairs) = CliTrainTests.WriteTinyJob(dir.Path);
        var unpaired = Path.Combine(dir.Path, "kto.jsonl");
        var rng = new Random(3);
        File.WriteAllLines(unpaired, Enumerable.Range(0, 16).Select(i =>
        {
            int a = rng.Next(10), b = rng.Next(10);
            bool good = i % 2 == 0;
            return new JsonObject { ["prompt"] = $"{a}+{b}=", ["completion"] = $"{(good ? a + b : a + b + 1)}", ["label"] = good }.ToJsonString();
        }));

        foreach (var (name, data) in new[] { ("unpaired", unpaired), ("paired", pairs) })
        {
            var output = Path.Combine(dir.Path, name);
            var (rc, stdout, err) = Run(TrainArgs(model, data, output, "--algorithm", "kto", "--desirable-weight", "1.2"));
            Assert.True(rc == 0, err + stdout);
            Assert.Contains("loss kto", stdout);
            Assert.Equal(name == "paired", stdout.Contains("unpaired from preference pairs"));
            var logs = ReadRows(Path.Combine(output, "metrics.jsonl")).Where(o => o.ContainsKey("loss")).ToList();
            Assert.Equal(3, logs.Count);
            foreach (var key in new[] { "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected", "kl" })
            {
                Assert.True(logs[0].ContainsKey(key), key);
            }

            Assert.Contains("algorithm: kto", File.ReadAllText(Path.Combine(output, "dposharp_config.yaml")));
            Assert.True(File.Exists(Path.Combine(output, "model.safetensors")));
        }

        var (code, _, error) = Run(TrainArgs(model, unpaired, Path.Combine(dir.Path, "bad"), "--algorithm", "kto", "--loss-type", "ipo"));
        Assert.Equal(2, code);
        Assert.Contains("algorithm kto takes loss_type", error);
    }
}
