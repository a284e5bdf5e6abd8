using DpoSharp.Data;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Training;

/// <summary>Tests that compare runs bit for bit: dropout draws from torch's process-wide generator, so nothing
/// else may run in parallel with them.</summary>
[CollectionDefinition(nameof(TorchRngCollection), DisableParallelization = true)]
public sealed class TorchRngCollection;

[Collection(nameof(TorchRngCollection))]
public class DpoTrainerTests
{
    private static DpoOptions Options(string outputDir, Action<DpoOptions>? configure = null)
    {
        var o = new DpoOptions
        {
            OutputDir = outputDir,
            LearningRate = 1e-2,
            PerDeviceTrainBatchSize = 4,
            PerDeviceEvalBatchSize = 4,
            MaxSteps = 6,
            LoggingSteps = 1,
            SaveSteps = 1000,
            LrSchedulerType = LrSchedulerType.Linear,
            Seed = 123,
        };
        configure?.Invoke(o);
        return o;
    }

    /// <summary>Independent re-implementation of one DPO (sigmoid) step on all pairs: per-row forwards, shifted
    /// log-prob sums, mean loss, clipping as torch.nn.utils.clip_grad_norm_, AdamW's first step (= lr·g/(|g|+ε)).</summary>
    private static Dictionary<string, float[]> ManualFirstStep(TinyCausalLM policy, TinyCausalLM reference, IReadOnlyList<TokenizedPair> pairs, double beta, double lr, double eps, double maxNorm)
    {
        using var scope = NewDisposeScope();
        policy.Module.eval();
        reference.Module.eval();
        Tensor SeqLogp(TinyCausalLM m, int[] prompt, int[] completion)
        {
            var ids = prompt.Concat(completion).Select(x => (long)x).ToArray();
            var logits = m.Forward(tensor(ids).unsqueeze(0)).squeeze(0);      // (T, V)
            var logp = nn.functional.log_softmax(logits, -1);
            Tensor total = zeros(1).squeeze();
            for (int t = prompt.Length; t < ids.Length; t++)
            {
                total = total + logp[t - 1, ids[t]];
            }

            return total;
        }

        Tensor lossSum = zeros(1).squeeze();
        foreach (var p in pairs)
        {
            Tensor rc, rr;
            using (no_grad())
            {
                rc = SeqLogp(reference, p.PromptIds, p.ChosenIds);
                rr = SeqLogp(reference, p.PromptIds, p.RejectedIds);
            }

            var pc = SeqLogp(policy, p.PromptIds, p.ChosenIds);
            var pr = SeqLogp(policy, p.PromptIds, p.RejectedIds);
            lossSum = lossSum - nn.functional.logsigmoid(beta * ((pc - rc) - (pr - rr)));
        }

        (lossSum / pairs.Count).backward();
        var parameters = policy.Module.named_parameters().ToList();
        double sq = 0;
        foreach (var (_, prm) in parameters)
        {
            var g = prm.grad!.data<float>().ToArray();
            sq += g.Select(x => (double)x * x).Sum();
        }

        double norm = Math.Sqrt(sq);
        double coef = maxNorm > 0 ? Math.Min(1.0, maxNorm / (norm + 1e-6)) : 1.0;
        var result = new Dictionary<string, float[]>();
        foreach (var (name, prm) in parameters)
        {
            var w = prm.detach().data<float>().ToArray();
            var g = prm.grad!.data<float>().ToArray();
            result[name] = w.Select((x, i) => (float)(x - (lr * (g[i] * coef) / (Math.Abs(g[i] * coef) + eps)))).ToArray();
        }

        policy.Module.zero_grad();
        return result;
    }

    private static void AssertClose(Dictionary<string, float[]> expected, Dictionary<string, float[]> actual, double tol)
    {
        Assert.Equal(expected.Keys.OrderBy(k => k), actual.Keys.OrderBy(k => k));
        foreach (var (k, e) in expected)
        {
            var a = actual[k];
            double maxDiff = e.Zip(a, (x, y) => Math.Abs(x - y)).Max();
            Assert.True(maxDiff <= tol, $"{k}: max |diff| {maxDiff} > {tol}");
        }
    }

    [Theory]
    [InlineData(4, 2, 2)]   // 2 micro-batches of 2 == 1 batch of 4
    [InlineData(5, 3, 2)]   // unequal micro-batches 3 + 2 == 1 batch of 5
    public void GradientAccumulationEqualsTheLargeBatchAndAManualStep(int pairs, int microBatch, int accumulation)
    {
        using var dir = TestPaths.CreateTempDir();
        var data = TinyData.Pairs(pairs);
        using var init = new TinyCausalLM(seed: 11);

        Dictionary<string, float[]> RunTrainer(int bs, int ga, string sub)
        {
            using var model = init.Clone();
            using var reference = init.Clone();
            var args = Options(Path.Combine(dir.Path, sub), o =>
            {
                o.PerDeviceTrainBatchSize = bs;
                o.GradientAccumulationSteps = ga;
                o.MaxSteps = 1;
                o.LearningRate = 1e-3;
                o.LrSchedulerType = LrSchedulerType.Constant;
                o.MaxGradNorm = 0.5;
            });
            using var trainer = new DpoTrainer(model, reference, args, data, padTokenId: 0);
            trainer.Train();
            return model.Snapshot();
        }

        var accumulated = RunTrainer(microBatch, accumulation, "accum");
        var big = RunTrainer(pairs, 1, "big");
        AssertClose(big, accumulated, 1e-6);

        using var manualPolicy = init.Clone();
        using var manualRef = init.Clone();
        var manual = ManualFirstStep(manualPolicy, manualRef, data, beta: 0.1, lr: 1e-3, eps: 1e-8, maxNorm: 0.5);
        AssertClose(manual, big, 1e-6);
    }

    [Fact]
    public void TwoRunsWithTheSameSeedAreBitIdentical()
    {
        using var dir = TestPaths.CreateTempDir();
        var data = TinyData.Pairs(10);
        (string Metrics, Dictionary<string, float[]> Weights) Run(string sub)
        {
            using var model = new TinyCausalLM(seed: 5);
            using var reference = model.Clone();
            var args = Options(Path.Combine(dir.Path, sub), o => o.DisableDropout = false);
            using var trainer = new DpoTrainer(model, reference, args, data, padTokenId: 0);
            trainer.Train();
            return (StableMetrics(Path.Combine(args.OutputDir, DpoTrainer.MetricsFileName)), model.Snapshot());
        }

        var a = Run("a");
        var b = Run("b");
        Assert.Equal(a.Metrics, b.Metrics);
        foreach (var (k, w) in a.Weights)
        {
            Assert.Equal(w, b.Weights[k]);
        }
    }

    [Theory]
    [InlineData("sigmoid", false)]
    [InlineData("bco_pair", false)]    // stateful loss: the running reward mean is restored
    [InlineData("ipo", true)]          // precomputed reference log-probs travel with the checkpoint
    public void ResumedRunMatchesAnUninterruptedOneExactly(string lossType, bool precompute)
    {
        using var dir = TestPaths.CreateTempDir();
        var data = TinyData.Pairs(10);
        var full = Path.Combine(dir.Path, "full");
        var resumed = Path.Combine(dir.Path, "resumed");
        void Configure(DpoOptions o)
        {
            o.SaveSteps = 3;
            o.MaxSteps = 6;
            o.DisableDropout = false;            // dropout draws from the torch generator: its state must be restored
            o.PerDeviceTrainBatchSize = 3;       // 4 micro-batches per epoch: the resume point is mid-epoch
            o.GradientAccumulationSteps = 1;
            o.WarmupSteps = 2;
            o.LossType = [lossType];
            o.PrecomputeRefLogProbs = precompute;
        }

        TinyCausalLM? Reference(TinyCausalLM model) => precompute ? null : model.Clone();

        Dictionary<string, float[]> fullWeights;
        using (var model = new TinyCausalLM(seed: 9))
        using (var reference = Reference(model))
        using (var trainer = new DpoTrainer(model, reference, Options(full, Configure), data, padTokenId: 0))
        {
            trainer.Train();
            fullWeights = model.Snapshot();
        }

        // Interrupted after step 3 (its checkpoint is written), then resumed by a new process-like setup.
        using (var model = new TinyCausalLM(seed: 9))
        using (var reference = Reference(model))
        using (var trainer = new DpoTrainer(model, reference, Options(resumed, Configure), data, padTokenId: 0))
        {
            using var cts = new CancellationTokenSource();
            trainer.StepCompleted += (step, _) =>
            {
                if (step == 4)
                {
                    cts.Cancel();
                }
            };
            Assert.Throws<OperationCanceledException>(() => trainer.Train(cancellationToken: cts.Token));
        }

        Assert.True(Directory.Exists(Path.Combine(resumed, "checkpoint-3")));
        Assert.False(Directory.Exists(Path.Combine(resumed, "checkpoint-3.tmp")));
        var latest = DpoTrainer.FindLatestCheckpoint(resumed);
        Assert.Equal(Path.Combine(resumed, "checkpoint-3"), latest);

        using (var model = new TinyCausalLM(seed: 9))     // the starting weights; the checkpoint's replace them
        using (var reference = Reference(model))
        using (var trainer = new DpoTrainer(model, reference, Options(resumed, Configure), data, padTokenId: 0))
        {
            var output = trainer.Train(latest);
            Assert.Equal(6, output.GlobalStep);
            var resumedWeights = model.Snapshot();
            foreach (var (k, w) in fullWeights)
            {
                Assert.Equal(w, resumedWeights[k]);
            }
        }

        var expected = StableMetrics(Path.Combine(full, DpoTrainer.MetricsFileName));
        Assert.Equal(6, expected.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(expected, StableMetrics(Path.Combine(resumed, DpoTrainer.MetricsFileName)));
    }

    [Fact]
    public void ShortRunRaisesAccuraciesAndMarginsAndLeavesTheReferenceUntouched()
    {
        using var dir = TestPaths.CreateTempDir();
        var train = TinyData.Pairs(32, seed: 1);
        var eval = TinyData.Pairs(16, seed: 2);
        using var model = new TinyCausalLM(seed: 3);
        using var reference = model.Clone();
        var refBefore = reference.Snapshot();
        var args = Options(dir.Path, o =>
        {
            o.MaxSteps = 24;
            o.LoggingSteps = 4;
            o.EvalStrategy = EvalStrategy.Steps;
            o.EvalSteps = 24;
            o.LearningRate = 2e-2;
            o.Beta = 0.5;
        });
        using var trainer = new DpoTrainer(model, reference, args, train, padTokenId: 0, evalDataset: eval);
        var before = trainer.Evaluate();
        trainer.Train();
        var train0 = trainer.State.LogHistory.First(e => e.Metrics.ContainsKey("loss")).Metrics;
        var trainN = trainer.State.LogHistory.Last(e => e.Metrics.ContainsKey("loss")).Metrics;
        var after = trainer.State.LogHistory.Last(e => e.Metrics.ContainsKey("eval_loss")).Metrics;

        // Policy == reference at the start: zero margins, no strict wins.
        Assert.Equal(0.0, before["eval_rewards/margins"], 6);
        Assert.Equal(0.0, before["eval_rewards/accuracies"]);
        Assert.Equal(Math.Log(2), before["eval_loss"], 5);
        Assert.True(trainN["rewards/accuracies"] > train0["rewards/accuracies"], $"{trainN["rewards/accuracies"]} vs {train0["rewards/accuracies"]}");
        Assert.True(trainN["rewards/margins"] > train0["rewards/margins"]);
        Assert.True(after["eval_rewards/accuracies"] >= 0.9, $"eval accuracy {after["eval_rewards/accuracies"]}");
        Assert.True(after["eval_rewards/margins"] > 0.5);
        Assert.True(after["eval_loss"] < before["eval_loss"]);

        // The reference never trains: no gradients, no requires_grad, same weights.
        foreach (var (name, p) in reference.Module.named_parameters())
        {
            Assert.False(p.requires_grad, name);
            Assert.Null(p.grad);
        }

        var refAfter = reference.Snapshot();
        foreach (var (k, w) in refBefore)
        {
            Assert.Equal(w, refAfter[k]);
        }

        // The final model is saved in output_dir itself.
        Assert.True(File.Exists(Path.Combine(dir.Path, "config.json")));
        Assert.True(File.Exists(Path.Combine(dir.Path, "model.safetensors")));
    }

    [Fact]
    public void WeightDecayAppliesToMatricesOnlyAndOldCheckpointsRotate()
    {
        using var dir = TestPaths.CreateTempDir();
        var data = TinyData.Pairs(8);
        using var model = new TinyCausalLM(seed: 6);
        using var reference = model.Clone();
        var before = model.Snapshot();
        var args = Options(dir.Path, o =>
        {
            o.MaxSteps = 3;
            o.LearningRate = 0.1;
            o.WeightDecay = 0.5;
            o.LrSchedulerType = LrSchedulerType.Constant;
            o.SaveSteps = 1;
            o.SaveTotalLimit = 2;
        });

        // A loss with zero gradient: AdamW's update is 0, so only the decoupled decay p ← p·(1 − lr·wd) moves weights.
        using var trainer = new DpoTrainer(model, reference, args, data, padTokenId: 0, loss: new ZeroGradientLoss());
        trainer.Train();
        var after = model.Snapshot();
        double factor = Math.Pow(1 - (0.1 * 0.5), 3);
        foreach (var (name, p) in model.Module.named_parameters())
        {
            var expected = p.dim() >= 2 ? before[name].Select(x => (float)(x * factor)).ToArray() : before[name];
            Assert.Equal(expected.Length, after[name].Length);
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.True(Math.Abs(expected[i] - after[name][i]) <= 1e-6 * Math.Max(1, Math.Abs(expected[i])), $"{name}[{i}]: {after[name][i]} vs {expected[i]}");
            }
        }

        // save_total_limit 2: checkpoints 2 and 3 remain.
        var left = Directory.GetDirectories(dir.Path, "checkpoint-*").Select(d => Path.GetFileName(d)!).Order().ToArray();
        Assert.Equal(new[] { "checkpoint-2", "checkpoint-3" }, left);
    }

    [Fact]
    public void NoTensorLeaksAcrossSteps()
    {
        using var dir = TestPaths.CreateTempDir();
        var data = TinyData.Pairs(12);
        using var model = new TinyCausalLM(seed: 4);
        using var reference = model.Clone();
        var args = Options(dir.Path, o =>
        {
            o.MaxSteps = 12;
            o.GradientAccumulationSteps = 2;
            o.PerDeviceTrainBatchSize = 2;
            o.DisableDropout = false;
        });
        using var trainer = new DpoTrainer(model, reference, args, data, padTokenId: 0);
        var live = new List<long>();
        trainer.StepCompleted += (_, _) => live.Add(DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        trainer.Train();
        Assert.Equal(12, live.Count);

        // After the first steps (optimizer state, grads) the live count is flat.
        Assert.All(live.Skip(3), c => Assert.Equal(live[2], c));
    }

    [Fact]
    public void PrecomputedReferenceIsCachedAndNotRecomputed()
    {
        using var dir = TestPaths.CreateTempDir();
        var data = TinyData.Pairs(8);
        using var init = new TinyCausalLM(seed: 21);
        var cache = Path.Combine(dir.Path, "cache");

        (int RefForwards, PrecomputedReference Ref) Run(string sub)
        {
            using var model = init.Clone();
            using var reference = init.Clone();
            var args = Options(Path.Combine(dir.Path, sub), o =>
            {
                o.PrecomputeRefLogProbs = true;
                o.MaxSteps = 2;
            });
            using var trainer = new DpoTrainer(model, reference, args, data, padTokenId: 0) { ReferenceCacheDir = cache };
            trainer.Train();
            var r = Assert.IsType<PrecomputedReference>(trainer.TrainReference);
            return (reference.Forwards, r);
        }

        var first = Run("a");
        Assert.True(first.RefForwards > 0);
        Assert.False(first.Ref.LoadedFromCache);
        Assert.Single(Directory.GetFiles(cache, "ref_logps-*.safetensors"));

        var second = Run("b");
        Assert.Equal(0, second.RefForwards);
        Assert.True(second.Ref.LoadedFromCache);
        Assert.Equal(first.Ref.Chosen, second.Ref.Chosen);

        // The cached values are the reference's completion log-prob sums (independent per-row computation).
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        init.Module.eval();
        for (int i = 0; i < data.Count; i++)
        {
            var ids = data[i].PromptIds.Concat(data[i].ChosenIds).Select(x => (long)x).ToArray();
            var logp = nn.functional.log_softmax(init.Forward(tensor(ids).unsqueeze(0)).squeeze(0), -1);
            double expected = 0;
            for (int t = data[i].PromptIds.Length; t < ids.Length; t++)
            {
                expected += logp[t - 1, ids[t]].item<float>();
            }

            Assert.Equal(expected, second.Ref.Chosen[i], 4);
        }
    }

    [Fact]
    public void NonFiniteLossStopsWithTheStepAndWritesNoCheckpointAfterIt()
    {
        using var dir = TestPaths.CreateTempDir();
        var data = TinyData.Pairs(8);
        using var model = new TinyCausalLM(seed: 2);
        using var reference = model.Clone();
        var args = Options(dir.Path, o =>
        {
            o.SaveSteps = 1;
            o.LoggingSteps = 5;
            o.MaxSteps = 6;
            o.PerDeviceTrainBatchSize = 2;
            o.MaxBadSteps = 0; // stop at the first NaN step (the default skips up to 3 in a row: NonFiniteGuardTests)
        });
        var loss = new NanAfterLoss(TrainerLossesForTests.Sigmoid(), nanFromCall: 3);
        using var trainer = new DpoTrainer(model, reference, args, data, padTokenId: 0, loss: loss);
        var e = Assert.Throws<DpoSharpException>(() => trainer.Train());
        Assert.Contains("step 3", e.Message);
        Assert.True(Directory.Exists(Path.Combine(dir.Path, "checkpoint-2")));
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "checkpoint-3")));
        Assert.False(File.Exists(Path.Combine(dir.Path, "model.safetensors")));
    }

    /// <summary>metrics.jsonl without the wall-clock metrics (pairs/tokens per second), which differ run to run.</summary>
    internal static string StableMetrics(string path) => string.Join('\n', File.ReadAllLines(path).Select(line =>
    {
        var o = System.Text.Json.Nodes.JsonNode.Parse(line)!.AsObject();
        foreach (var k in o.Select(kv => kv.Key).Where(k => k.EndsWith("_per_second", StringComparison.Ordinal) || k.EndsWith("runtime", StringComparison.Ordinal)).ToList())
        {
            o.Remove(k);
        }

        return o.ToJsonString();
    }));
}

/// <summary>Per-pair loss 0·(chosen log-prob): zero gradients everywhere, rewards as in sigmoid.</summary>
internal sealed class ZeroGradientLoss : DpoSharp.Losses.IPreferenceLoss
{
    public string Name => "zero";

    public DpoSharp.Losses.PreferenceLossOutput Compute(DpoSharp.Losses.PreferenceLossInput i) =>
        new(i.PolicyChosenLogps * 0.0, i.PolicyChosenLogps.detach(), i.PolicyRejectedLogps.detach());
}

/// <summary>Wraps a loss and returns NaN losses from the n-th call on.</summary>
internal sealed class NanAfterLoss(DpoSharp.Losses.IPreferenceLoss inner, int nanFromCall) : DpoSharp.Losses.IPreferenceLoss
{
    private int _calls;

    public string Name => inner.Name;

    public DpoSharp.Losses.PreferenceLossOutput Compute(DpoSharp.Losses.PreferenceLossInput input)
    {
        var o = inner.Compute(input);
        return ++_calls >= nanFromCall ? o with { Losses = o.Losses * double.NaN } : o;
    }
}

/// <summary>Sigmoid DPO written in the test (independent of the library's loss classes).</summary>
internal static class TrainerLossesForTests
{
    public static DpoSharp.Losses.IPreferenceLoss Sigmoid() => new SigmoidLoss();

    private sealed class SigmoidLoss : DpoSharp.Losses.IPreferenceLoss
    {
        public string Name => "sigmoid";

        public DpoSharp.Losses.PreferenceLossOutput Compute(DpoSharp.Losses.PreferenceLossInput i)
        {
            var c = i.PolicyChosenLogps - i.ReferenceChosenLogps!;
            var r = i.PolicyRejectedLogps - i.ReferenceRejectedLogps!;
            return new(-nn.functional.logsigmoid(i.Beta * (c - r)), (i.Beta * c).detach(), (i.Beta * r).detach());
        }
    }
}
