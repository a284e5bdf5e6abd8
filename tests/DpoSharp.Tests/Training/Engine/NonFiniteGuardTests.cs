using DpoSharp.Data;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using DpoSharp.Training.Metrics;
using DpoSharp.Training.Objectives;

namespace DpoSharp.Tests.Training.Engine;

/// <summary>
/// The non-finite guard (<c>max_bad_steps</c>): a step whose loss is NaN is skipped with the weights bit-identical,
/// counted (<c>skipped_steps</c>) and reported with its rows; more than <c>max_bad_steps</c> bad steps in a row stop
/// the run with a diagnosis; 0 stops at the first.
/// </summary>
[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class NonFiniteGuardTests
{
    /// <summary>SFT, but the loss of the chosen optimizer steps (1-based; one micro-batch per step) is NaN.</summary>
    private sealed class PoisonedObjective(SftObjective inner, Func<int, bool> poisoned) : ITrainingObjective<CompletionBatch>
    {
        private int _trainCalls;

        public TrainingLossMetric TrainingLossMetric => inner.TrainingLossMetric;

        public string? ExamplesPerSecondMetric => inner.ExamplesPerSecondMetric;

        public void Begin(ObjectiveState? resumed) => inner.Begin(resumed);

        public ObjectiveOutput Compute(CompletionBatch batch, DataSplit split)
        {
            var output = inner.Compute(batch, split);
            return split == DataSplit.Train && poisoned(++_trainCalls) ? output with { LossSum = output.LossSum * float.NaN } : output;
        }

        public ObjectiveState SaveState() => inner.SaveState();

        public void Dispose() => inner.Dispose();
    }

    private static List<TokenizedCompletion> Rows(int count)
    {
        var rng = new Random(3);
        return [.. Enumerable.Range(0, count).Select(_ => new TokenizedCompletion(
            [.. Enumerable.Range(0, 3 + rng.Next(3)).Select(_ => 1 + rng.Next(30))],
            [.. Enumerable.Range(0, 2 + rng.Next(3)).Select(_ => 1 + rng.Next(30))]))];
    }

    private static (TrainingLoop<CompletionBatch> Loop, List<Dictionary<string, float[]>> WeightsAfterStep, List<SkippedStep> Skipped, List<TrainerLogEntry> Logs)
        Build(TinyCausalLM model, string output, int maxBadSteps, Func<int, bool> poisoned, int maxSteps = 4)
    {
        var options = new SftOptions
        {
            OutputDir = output,
            LearningRate = 1e-2,
            PerDeviceTrainBatchSize = 2,
            MaxSteps = maxSteps,
            LoggingSteps = 1,
            SaveSteps = 100,
            ReportTo = [],
            Seed = 5,
            MaxBadSteps = maxBadSteps,
        };
        options.Validate();
        var data = Rows(16);
        var loop = new TrainingLoop<CompletionBatch>(model, new PoisonedObjective(new SftObjective(model), poisoned), new CompletionBatchSource(data, new CompletionCollator(0)), null, options);
        var weights = new List<Dictionary<string, float[]>> { Weights(model) };
        var skipped = new List<SkippedStep>();
        var logs = new List<TrainerLogEntry>();
        loop.StepCompleted += (_, _) => weights.Add(Weights(model));
        loop.StepSkipped += skipped.Add;
        loop.Logged += logs.Add;
        return (loop, weights, skipped, logs);
    }

    private static Dictionary<string, float[]> Weights(TinyCausalLM model) =>
        model.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());

    private static bool Identical(Dictionary<string, float[]> a, Dictionary<string, float[]> b) =>
        a.Keys.All(k => a[k].AsSpan().SequenceEqual(b[k]));

    [Fact]
    public void ANaNStepIsSkippedWithTheWeightsBitIdenticalAndTheRunGoesOn()
    {
        using var dir = TestPaths.CreateTempDir();
        using var model = new TinyCausalLM(seed: 2);
        var (loop, weights, skipped, logs) = Build(model, dir.Path, maxBadSteps: 3, poisoned: step => step == 2);
        using (loop)
        {
            var result = loop.Run();
            Assert.Equal(4, result.GlobalStep);
            Assert.True(double.IsFinite(result.TrainingLoss));
        }

        // weights[i] = after step i. Step 2 was skipped: bit-identical to step 1; steps 1 and 3 changed them.
        Assert.False(Identical(weights[0], weights[1]));
        Assert.True(Identical(weights[1], weights[2]), "a skipped step must not change any weight");
        Assert.False(Identical(weights[2], weights[3]));
        Assert.All(weights[4].Values.SelectMany(v => v), v => Assert.True(float.IsFinite(v)));

        var s = Assert.Single(skipped);
        Assert.Equal(2, s.Step);
        Assert.True(double.IsNaN(s.Loss));
        Assert.Equal(2, s.Rows.Count); // the step's pairs: one micro-batch of per_device_train_batch_size 2
        Assert.All(s.Rows, r => Assert.InRange(r, 0, 15));
        Assert.Equal(1, s.Consecutive);

        // skipped_steps appears from the skipped step on; the losses logged stay finite (the bad step is not averaged in).
        Assert.False(logs.Single(l => l.Step == 1).Metrics.ContainsKey(MetricNames.SkippedSteps));
        Assert.Equal(1, logs.Single(l => l.Step == 4).Metrics[MetricNames.SkippedSteps]);
        Assert.All(logs.Where(l => l.Step != 2), l => Assert.True(double.IsFinite(l.Metrics[MetricNames.Loss])));
    }

    [Fact]
    public void MoreThanMaxBadStepsInARowStopTheRunWithADiagnosis()
    {
        using var dir = TestPaths.CreateTempDir();
        using var model = new TinyCausalLM(seed: 2);
        var (loop, weights, skipped, _) = Build(model, dir.Path, maxBadSteps: 2, poisoned: step => step >= 2, maxSteps: 8);
        using (loop)
        {
            var e = Assert.Throws<DpoSharpException>(() => loop.Run());
            Assert.Contains("3 consecutive step(s) (max_bad_steps 2)", e.Message);
            Assert.Contains("step 2:", e.Message);
            Assert.Contains("step 4:", e.Message);
            Assert.Contains("rows ", e.Message);
        }

        Assert.Equal([2, 3], skipped.Select(s => s.Step));
        Assert.Equal(4, weights.Count); // start, step 1, step 2 (skipped), step 3 (skipped); step 4 stopped the run
        Assert.True(Identical(weights[1], weights[^1]), "no NaN step may reach the weights");
    }

    [Fact]
    public void MaxBadStepsZeroStopsAtTheFirst()
    {
        using var dir = TestPaths.CreateTempDir();
        using var model = new TinyCausalLM(seed: 2);
        var (loop, weights, skipped, _) = Build(model, dir.Path, maxBadSteps: 0, poisoned: step => step == 2);
        using (loop)
        {
            var e = Assert.Throws<DpoSharpException>(() => loop.Run());
            Assert.Contains("1 consecutive step(s) (max_bad_steps 0)", e.Message);
        }

        Assert.Empty(skipped);
        Assert.True(Identical(weights[1], Weights(model)));
    }
}
