using System.Text.Json;
using DpoSharp.Cli;
using DpoSharp.Cli.Commands;
using DpoSharp.Demo;
using DpoSharp.Models;
using DpoSharp.Tests.Training;
using DpoSharp.Tokenization;
using DpoSharp.Training.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Demo;

/// <summary>Trains models (global torch seed, thread count): runs in the serial torch collection.</summary>
[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class DemoRunnerTests
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>
    /// The shortened pipeline end to end (data → SFT → DPO → evaluation). Measured with this configuration on seeds
    /// 42 / 1 / 7: truthfulness 57→93%, 52→98%, 42→95%; eval accuracies 0.95 / 0.98 / 0.96. The thresholds below leave
    /// a wide margin.
    /// </summary>
    [Fact]
    public void ShortDemoMakesTheModelMoreTruthfulAndWritesEveryOutput()
    {
        using var dir = TestPaths.CreateTempDir();
        var options = DemoOptions.Quick(dir.Path);
        var stages = new HashSet<string>();
        var r = DemoRunner.Run(options, p => stages.Add(p.Stage));

        // Before DPO the SFT model names one of the two numbers, but is unsure which one is right.
        Assert.InRange(r.Before.Truthfulness, 0.3, 0.7);
        Assert.True(r.Before.Truthfulness + r.Before.FalseAnswerRate > 0.9, "the SFT model should answer with one of the two numbers");
        Assert.Equal(0.0, r.Before.KlToReference, 6);
        Assert.Equal(0.0, r.Before.RewardsMargins, 6);

        // After DPO: much more truthful, the implicit reward ranks held-out pairs correctly, the model moved away.
        Assert.True(r.After.Truthfulness - r.Before.Truthfulness >= 0.25, $"truthfulness {r.Before.Truthfulness} -> {r.After.Truthfulness}");
        Assert.True(r.After.Truthfulness >= 0.8, $"truthfulness after {r.After.Truthfulness}");
        Assert.True(r.After.RewardsAccuracies >= 0.85, $"eval_rewards/accuracies {r.After.RewardsAccuracies}");
        Assert.True(r.After.RewardsMargins > 0.5);
        Assert.True(r.After.KlToReference > 0.01);
        Assert.Equal(r.After.Truthfulness, r.EvalQuestions.Zip(r.After.Answers).Count(x => x.First.TrueAnswer == x.Second) / (double)r.EvalQuestions.Count, 9);
        Assert.Superset(new HashSet<string> { DemoRunner.StageData, DemoRunner.StageSft, DemoRunner.StageEvalBefore, DemoRunner.StageDpo, DemoRunner.StageEvalAfter }, stages);

        // summary.json carries the numbers.
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.Path, "summary.json")));
        var s = summary.RootElement;
        Assert.Equal(r.Before.Truthfulness, s.GetProperty("truthfulness_before").GetDouble());
        Assert.Equal(r.After.Truthfulness, s.GetProperty("truthfulness_after").GetDouble());
        Assert.Equal(r.After.RewardsAccuracies, s.GetProperty("eval_rewards_accuracies").GetDouble());
        Assert.Equal(r.After.RewardsMargins, s.GetProperty("eval_rewards_margins").GetDouble());
        Assert.Equal(r.After.KlToReference, s.GetProperty("kl_to_reference").GetDouble());
        Assert.True(s.GetProperty("seconds").GetDouble() > 0);
        Assert.Equal(3, s.GetProperty("examples").GetArrayLength());

        // The trained model is an HF directory that loads, with its tokenizer, and answers.
        using var model = ModelLoader.Load(dir.Path);
        var tok = HfTokenizer.Load(dir.Path);
        var q = r.EvalQuestions[0];
        var answer = tok.Decode(DpoSharp.Generation.TextGenerator.Generate(model, tok.Encode(q.Prompt), new() { MaxNewTokens = 4 }), skipSpecialTokens: true).Trim();
        Assert.Equal(r.After.Answers[0], answer);

        // Metrics, TensorBoard events, charts.
        var records = JsonlMetricSink.Read(Path.Combine(dir.Path, "metrics.jsonl"));
        Assert.Contains(records, x => x.Values.ContainsKey("eval_rewards/accuracies"));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(dir.Path, "runs"), "events.out.tfevents.*", SearchOption.AllDirectories));
        foreach (var png in new[] { "loss.png", "rewards_margins.png", "rewards_accuracies.png", "truthfulness.png" })
        {
            var bytes = File.ReadAllBytes(Path.Combine(dir.Path, "charts", png));
            Assert.Equal(PngSignature, bytes.Take(8));
        }

        Assert.True(File.Exists(Path.Combine(dir.Path, "sft", "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(dir.Path, "data", "sft.jsonl")));
    }

    [Fact]
    public void KlIsZeroAgainstItselfAndMatchesAnIndependentComputation()
    {
        using var dir = TestPaths.CreateTempDir();
        var (modelDir, _) = SftTrainerTests.WriteTinyModel(dir.Path);
        using var a = ModelLoader.Load(modelDir);
        using var b = ModelLoader.Load(modelDir);
        DemoRunner.InitializeLikeTorchModules(b, 99);
        int[] prompt = [3, 5, 7];
        int[] completion = [11, 2];
        Assert.Equal(0.0, DemoRunner.CompletionKl(a, a, prompt, completion), 6);

        // Independent: softmax in double precision on the C# side, KL summed over the two completion positions.
        double expected = 0;
        using (no_grad())
        {
            var ids = tensor(prompt.Concat(completion).Select(x => (long)x).ToArray()).unsqueeze(0);
            var la = a.Forward(ids)[0].to(ScalarType.Float64).data<double>().ToArray();
            var lb = b.Forward(ids)[0].to(ScalarType.Float64).data<double>().ToArray();
            int v = a.Config.VocabSize;
            for (int pos = prompt.Length - 1; pos < prompt.Length + completion.Length - 1; pos++)
            {
                var p = Softmax(la.AsSpan(pos * v, v));
                var q = Softmax(lb.AsSpan(pos * v, v));
                expected += p.Zip(q).Sum(x => x.First * Math.Log(x.First / x.Second));
            }
        }

        Assert.Equal(expected, DemoRunner.CompletionKl(a, b, prompt, completion), 3);
        Assert.True(expected > 0);
    }

    private static double[] Softmax(ReadOnlySpan<double> logits)
    {
        double max = double.NegativeInfinity;
        foreach (var x in logits)
        {
            max = Math.Max(max, x);
        }

        var e = new double[logits.Length];
        double sum = 0;
        for (int i = 0; i < e.Length; i++)
        {
            e[i] = Math.Exp(logits[i] - max);
            sum += e[i];
        }

        return [.. e.Select(x => x / sum)];
    }

    [Fact]
    public void DemoCommandRejectsABadBetaListAndTrainRunsTheDemo()
    {
        var e = new StringWriter();
        Assert.Equal(2, DpoSharpCli.Run(["demo", "--sweep-beta", "0.1,abc"], new StringWriter(), e));
        Assert.Contains("abc", e.ToString());
        Assert.Equal([0.05, 0.1, 0.5], DemoCommand.ParseBetas("0.05, 0.1,0.5"));

        // `train` with no config, model or dataset runs the demo (stopped at once here: its output_dir is a file).
        using var dir = TestPaths.CreateTempDir();
        var file = Path.Combine(dir.Path, "a-file");
        File.WriteAllText(file, "");
        var o = new StringWriter();
        Assert.Equal(2, DpoSharpCli.Run(["train", "--output-dir", file], o, new StringWriter()));
        Assert.Contains("dposharp demo", o.ToString());
    }
}
