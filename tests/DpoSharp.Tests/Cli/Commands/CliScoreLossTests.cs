using System.Text.Json.Nodes;
using DpoSharp.Cli;

namespace DpoSharp.Tests.Cli.Commands;

public class CliScoreLossTests
{
    private static (int Rc, string Err) Run(params string[] args)
    {
        var e = new StringWriter();
        var rc = DpoSharpCli.Run(args, new StringWriter(), e);
        return (rc, e.ToString());
    }

    private static List<JsonObject> ReadRows(string path) =>
        File.ReadAllLines(path).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();

    [Fact]
    public void ScoreWithReferenceAddsReferenceLogpsRewardsAndPerRowLoss()
    {
        using var dir = TestPaths.CreateTempDir();
        var policy = TinyCheckpoints.Write(Path.Combine(dir.Path, "policy"), "gpt2", seed: 1);
        var reference = TinyCheckpoints.Write(Path.Combine(dir.Path, "ref"), "gpt2", seed: 2);
        var data = Path.Combine(dir.Path, "pairs.jsonl");
        File.WriteAllLines(data,
        [
            """{"prompt_input_ids": [1, 2, 3], "chosen_input_ids": [4, 5], "rejected_input_ids": [6, 7, 8]}""",
            """{"prompt_input_ids": [9], "chosen_input_ids": [10, 11, 12, 13], "rejected_input_ids": [14]}""",
            """{"prompt_input_ids": [20, 21], "chosen_input_ids": [22], "rejected_input_ids": [23, 24]}""",
        ]);
        var plain = Path.Combine(dir.Path, "policy.jsonl");
        var refOnly = Path.Combine(dir.Path, "ref.jsonl");
        var withLoss = Path.Combine(dir.Path, "loss.jsonl");
        Assert.Equal(0, Run("score", "--model", policy, "--dataset", data, "--output", plain).Rc);
        Assert.Equal(0, Run("score", "--model", reference, "--dataset", data, "--output", refOnly).Rc);
        const double beta = 0.3, eps = 0.1;
        var (rc, err) = Run("score", "--model", policy, "--dataset", data, "--output", withLoss, "--batch-size", "2",
            "--ref-model", reference, "--loss-type", "sigmoid", "--beta", "0.3", "--label-smoothing", "0.1");
        Assert.True(rc == 0, err);

        var p = ReadRows(plain);
        var r = ReadRows(refOnly);
        var rows = ReadRows(withLoss);
        Assert.Equal(3, rows.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            double D(JsonObject o, string k) => o[k]!.GetValue<double>();
            double c = D(p[i], "chosen_logps"), j = D(p[i], "rejected_logps");
            double rcLogp = D(r[i], "chosen_logps"), rrLogp = D(r[i], "rejected_logps");
            Assert.Equal(c, D(rows[i], "chosen_logps"), 4);                 // still the plain sums
            Assert.Equal(rcLogp, D(rows[i], "ref_chosen_logps"), 4);
            Assert.Equal(rrLogp, D(rows[i], "ref_rejected_logps"), 4);
            Assert.Equal(beta * (c - rcLogp), D(rows[i], "chosen_reward"), 4);
            Assert.Equal(beta * (j - rrLogp), D(rows[i], "rejected_reward"), 4);

            // cDPO by hand: −(1−ε)·log σ(β·h) − ε·log σ(−β·h), h = (c − c_ref) − (r − r_ref).
            double h = (c - rcLogp) - (j - rrLogp);
            static double LogSigmoid(double x) => -Math.Log(1 + Math.Exp(-x));
            double expected = (-(1 - eps) * LogSigmoid(beta * h)) - (eps * LogSigmoid(-beta * h));
            Assert.Equal(expected, D(rows[i], "loss"), 4);
        }
    }

    [Fact]
    public void BatchDependentLossesAndLossOptionsWithoutReferenceAreRejected()
    {
        using var dir = TestPaths.CreateTempDir();
        var policy = TinyCheckpoints.Write(Path.Combine(dir.Path, "policy"), "gpt2", seed: 1);
        var data = Path.Combine(dir.Path, "pairs.jsonl");
        File.WriteAllText(data, """{"prompt_input_ids": [1], "chosen_input_ids": [2], "rejected_input_ids": [3]}""" + "\n");
        var output = Path.Combine(dir.Path, "out.jsonl");
        var (rc, err) = Run("score", "--model", policy, "--dataset", data, "--output", output, "--ref-model", policy, "--loss-type", "bco_pair");
        Assert.Equal(2, rc);
        Assert.Contains("bco_pair", err);
        Assert.Contains("batch", err);
        (rc, err) = Run("score", "--model", policy, "--dataset", data, "--output", output, "--beta", "0.2");
        Assert.Equal(2, rc);
        Assert.Contains("--ref-model", err);
        Assert.False(File.Exists(output));
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void ScoreWithAnAdapterEqualsScoringTheMergedModelAndItsBaseCanBeTheReference(string type)
    {
        using var dir = TestPaths.CreateTempDir();
        var (baseDir, adapterDir) = TinyAdapters.Write(dir.Path, type);
        var merged = Path.Combine(dir.Path, "merged");
        Assert.Equal(0, Run("merge", "--model", baseDir, "--adapter", adapterDir, "--output-dir", merged).Rc);
        var data = Path.Combine(dir.Path, "pairs.jsonl"); // text: tokenized with --model's tokenizer (the adapter folder has none)
        File.WriteAllLines(data,
        [
            """{"prompt": "The sky is", "chosen": " blue.", "rejected": " green, mostly."}""",
            """{"prompt": "2 + 2 =", "chosen": " 4", "rejected": " 5"}""",
            """{"prompt": "Say hi", "chosen": " hi there", "rejected": " no"}""",
        ]);
        string Score(string name, params string[] extra)
        {
            var output = Path.Combine(dir.Path, name + ".jsonl");
            var (rc, err) = Run(["score", "--dataset", data, "--output", output, "--batch-size", "2", .. extra]);
            Assert.True(rc == 0, err);
            return output;
        }

        var withAdapter = ReadRows(Score("adapter", "--model", baseDir, "--adapter", adapterDir));
        var mergedRows = ReadRows(Score("merged", "--model", merged));
        var baseRows = ReadRows(Score("base", "--model", baseDir));
        static double D(JsonObject o, string k) => o[k]!.GetValue<double>();
        Assert.Equal(3, withAdapter.Count);
        for (int i = 0; i < 3; i++)
        {
            foreach (var k in new[] { "chosen_logps", "rejected_logps" })
            {
                Assert.True(Math.Abs(D(withAdapter[i], k) - D(mergedRows[i], k)) <= 1e-5, $"row {i} {k}: {D(withAdapter[i], k)} vs merged {D(mergedRows[i], k)}");
            }
        }

        Assert.Contains(Enumerable.Range(0, 3), i => Math.Abs(D(withAdapter[i], "chosen_logps") - D(baseRows[i], "chosen_logps")) > 1e-2);

        // The base (adapter disabled) as the reference = the merged model scored against the base model.
        var disabled = ReadRows(Score("disabled", "--model", baseDir, "--adapter", adapterDir, "--ref-adapters-disabled", "--beta", "0.3"));
        var against = ReadRows(Score("against", "--model", merged, "--ref-model", baseDir, "--beta", "0.3"));
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(D(baseRows[i], "chosen_logps"), D(disabled[i], "ref_chosen_logps"), 10);
            foreach (var k in new[] { "chosen_logps", "rejected_logps", "ref_chosen_logps", "ref_rejected_logps", "chosen_reward", "rejected_reward", "loss" })
            {
                Assert.True(Math.Abs(D(disabled[i], k) - D(against[i], k)) <= 1e-5, $"row {i} {k}: {D(disabled[i], k)} vs {D(against[i], k)}");
            }
        }

        // Bad combinations and a bad adapter: exit 2 with the reason, no output.
        var bad = Path.Combine(dir.Path, "bad.jsonl");
        var (code, message) = Run("score", "--model", baseDir, "--dataset", data, "--output", bad, "--ref-adapters-disabled");
        Assert.Equal(2, code);
        Assert.Contains("--ref-adapters-disabled needs --adapter", message);
        (code, message) = Run("score", "--model", baseDir, "--adapter", adapterDir, "--dataset", data, "--output", bad, "--ref-adapters-disabled", "--ref-model", baseDir);
        Assert.Equal(2, code);
        Assert.Contains("pass one of them", message);
        var missing = Path.Combine(dir.Path, "no-adapter");
        (code, message) = Run("score", "--model", baseDir, "--adapter", missing, "--dataset", data, "--output", bad);
        Assert.Equal(2, code);
        Assert.Contains(missing, message);
        Assert.False(File.Exists(bad));
    }
}
