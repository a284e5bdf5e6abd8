using System.Text.Json.Nodes;
using DpoSharp.Cli;
using DpoSharp.Data;
using DpoSharp.Models;
using DpoSharp.Scoring;
using DpoSharp.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Scoring;

public class ScoringTests
{
    private static int[] Ids(int n, int seed) => ArchitectureTests.RandomIds(n, seed).Select(x => (int)x).ToArray();

    internal static List<TokenizedPair> Pairs() =>
    [
        new(Ids(5, 1), Ids(4, 2), Ids(7, 3)) { SourceIndex = 0 },
        new(Ids(1, 4), Ids(9, 5), Ids(2, 6)) { SourceIndex = 1 },
        new(Ids(8, 7), Ids(3, 8), Ids(3, 9)) { SourceIndex = 2 },
        new(Ids(3, 10), Ids(1, 11), Ids(6, 12)) { SourceIndex = 3 },
    ];

    /// <summary>log p(completion | prompt) from the float64 reference model: explicit log-softmax per position.</summary>
    private static double ReferenceLogp(JsonObject cfg, Dictionary<string, Tensor> w, int[] prompt, int[] completion)
    {
        var seq = prompt.Concat(completion).Select(x => (long)x).ToArray();
        var logits = ReferenceLm.Logits(cfg, w, seq); // (T, V)
        double total = 0;
        for (int j = prompt.Length; j < seq.Length; j++)
        {
            var row = logits[j - 1];
            double max = row.max().item<double>();
            double lse = max + Math.Log((row - max).exp().sum().item<double>());
            total += row[seq[j]].item<double>() - lse;
        }

        return total;
    }

    [Theory]
    [AllModelTypes]
    public void CompletionLogProbsMatchIndependentComputationAndBatchingDoesNotMatter(string type)
    {
        using var tmp = TestPaths.CreateTempDir();
        var (dir, cfg) = ArchitectureTests.WriteVariant(tmp.Path, type);
        using var model = ModelLoader.Load(dir);
        var w = ReferenceLm.Weights(dir);
        var pairs = Pairs();
        var batched = PreferenceScorer.Score(model, pairs, batchSize: 4);
        var single = PreferenceScorer.Score(model, pairs, batchSize: 1);
        var three = PreferenceScorer.Score(model, pairs, batchSize: 3);
        for (int i = 0; i < pairs.Count; i++)
        {
            double chosen = ReferenceLogp(cfg, w, pairs[i].PromptIds, pairs[i].ChosenIds);
            double rejected = ReferenceLogp(cfg, w, pairs[i].PromptIds, pairs[i].RejectedIds);
            Assert.True(Math.Abs(batched[i].ChosenLogps - chosen) < 1e-4, $"pair {i} chosen {batched[i].ChosenLogps} vs {chosen}");
            Assert.True(Math.Abs(batched[i].RejectedLogps - rejected) < 1e-4, $"pair {i} rejected {batched[i].RejectedLogps} vs {rejected}");
            Assert.True(Math.Abs(batched[i].ChosenLogps - single[i].ChosenLogps) < 1e-4);
            Assert.True(Math.Abs(batched[i].RejectedLogps - single[i].RejectedLogps) < 1e-4);
            Assert.True(Math.Abs(three[i].ChosenLogps - single[i].ChosenLogps) < 1e-4);
            Assert.Equal(pairs[i].ChosenIds.Length, batched[i].ChosenTokens);
        }
    }

    internal static string WriteDataset(string path, IEnumerable<TokenizedPair> pairs)
    {
        File.WriteAllLines(path, pairs.Select(p => new JsonObject
        {
            ["prompt_input_ids"] = new JsonArray(p.PromptIds.Select(x => (JsonNode)x).ToArray()),
            ["chosen_input_ids"] = new JsonArray(p.ChosenIds.Select(x => (JsonNode)x).ToArray()),
            ["rejected_input_ids"] = new JsonArray(p.RejectedIds.Select(x => (JsonNode)x).ToArray()),
        }.ToJsonString()));
        return path;
    }

    [Theory]
    [AllModelTypes]
    public void ScoreCommandWritesOneRowPerPairMatchingRowByRowScoring(string type)
    {
        using var tmp = TestPaths.CreateTempDir();
        var dir = TinyCheckpoints.Write(Path.Combine(tmp.Path, "m"), type, seed: 11);
        var pairs = Pairs();
        var data = WriteDataset(Path.Combine(tmp.Path, "pairs.jsonl"), pairs);
        var outPath = Path.Combine(tmp.Path, "scores.jsonl");
        var err = new StringWriter();
        int rc = DpoSharpCli.Run(["score", "--model", dir, "--dataset", data, "--output", outPath, "--batch-size", "3"], new StringWriter(), err);
        Assert.True(rc == 0, err.ToString());
        var lines = File.ReadAllLines(outPath);
        Assert.Equal(pairs.Count, lines.Length);
        using var model = ModelLoader.Load(dir);
        for (int i = 0; i < pairs.Count; i++)
        {
            var expected = PreferenceScorer.Score(model, [pairs[i]], batchSize: 1)[0];
            var row = JsonNode.Parse(lines[i])!;
            Assert.True(Math.Abs(row["chosen_logps"]!.GetValue<double>() - expected.ChosenLogps) < 1e-4);
            Assert.True(Math.Abs(row["rejected_logps"]!.GetValue<double>() - expected.RejectedLogps) < 1e-4);
            Assert.True(row["chosen_logps"]!.GetValue<double>() < 0);
        }
    }

    [Theory]
    [InlineData("{\"prompt_input_ids\":[1],\"chosen_input_ids\":[2]}", "missing field 'rejected_input_ids'")]
    [InlineData("{\"prompt_input_ids\":[1],\"chosen_input_ids\":[2, \"x\"],\"rejected_input_ids\":[3]}", "field 'chosen_input_ids' item 1")]
    [InlineData("{\"prompt_input_ids\":[1],\"chosen_input_ids\":[2],\"rejected_input_ids\":[9999]}", "token id 9999 is outside")]
    [InlineData("{\"prompt_input_ids\":[],\"chosen_input_ids\":[2],\"rejected_input_ids\":[3]}", "'prompt_input_ids' is empty")]
    [InlineData("{\"prompt_input_ids\":[1],\"chosen_input_ids\":[],\"rejected_input_ids\":[3]}", "'chosen_input_ids' is empty")]
    [InlineData("[1, 2]", "must be a JSON object")]
    [InlineData("{\"prompt_input_ids\":[1", "not valid JSON")]
    public void ScoreCommandRejectsBadRowsNamingLineAndFieldWithoutPartialOutput(string badLine, string expected)
    {
        using var tmp = TestPaths.CreateTempDir();
        var dir = TinyCheckpoints.Write(Path.Combine(tmp.Path, "m"), "llama");
        var data = Path.Combine(tmp.Path, "pairs.jsonl");
        File.WriteAllLines(data, ["{\"prompt_input_ids\":[1,2],\"chosen_input_ids\":[3],\"rejected_input_ids\":[4]}", "", badLine]);
        var outPath = Path.Combine(tmp.Path, "scores.jsonl");
        var err = new StringWriter();
        int rc = DpoSharpCli.Run(["score", "--model", dir, "--dataset", data, "--output", outPath], new StringWriter(), err);
        Assert.Equal(2, rc);
        Assert.Contains($"{data}:3", err.ToString());
        Assert.Contains(expected, err.ToString());
        Assert.False(File.Exists(outPath));
        Assert.Empty(Directory.GetFiles(tmp.Path, "scores.jsonl*"));
    }

    [Fact]
    public void ScoreCommandRejectsBadOptionsAndPaths()
    {
        using var tmp = TestPaths.CreateTempDir();
        var err = new StringWriter();
        Assert.Equal(2, DpoSharpCli.Run(["score", "--model", Path.Combine(tmp.Path, "none"), "--dataset", "x", "--output", "y"], new StringWriter(), err));
        Assert.Contains("not found", err.ToString());
        var dir = TinyCheckpoints.Write(Path.Combine(tmp.Path, "m"), "gpt2");
        err = new StringWriter();
        Assert.Equal(2, DpoSharpCli.Run(["score", "--model", dir, "--dataset", "x.jsonl", "--output", "y", "--batch-size", "0"], new StringWriter(), err));
        Assert.Contains("--batch-size", err.ToString());
        err = new StringWriter();
        Assert.Equal(2, DpoSharpCli.Run(["score", "--model", dir, "--dataset", "x.jsonl", "--output", "y", "--device", "tpu"], new StringWriter(), err));
        Assert.Contains("--device", err.ToString());
    }
}
