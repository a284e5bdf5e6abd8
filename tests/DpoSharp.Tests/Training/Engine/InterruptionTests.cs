using DpoSharp.Training;
using DpoSharp.Training.Engine;

namespace DpoSharp.Tests.Training.Engine;

/// <summary>A run stopped on request checkpoints its last step, and resume continues it bit-exactly.</summary>
[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class InterruptionTests
{
    private static DpoOptions Args(string output) => new()
    {
        OutputDir = output,
        LearningRate = 1e-2,
        PerDeviceTrainBatchSize = 2,
        GradientAccumulationSteps = 2,
        MaxSteps = 9,
        LoggingSteps = 3,
        SaveSteps = 4,
        DisableDropout = false,
        ReportTo = [ReportTarget.Jsonl],
        Seed = 5,
        LossType = ["bco_pair"],   // a stateful loss: its running mean must be checkpointed at the stop too
    };

    private static Dictionary<string, float[]> Weights(TinyCausalLM model) =>
        model.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());

    [Fact]
    public void CancellationCheckpointsTheLastStepAndResumeContinuesExactly()
    {
        using var dir = TestPaths.CreateTempDir();
        var data = TinyData.Pairs(16);

        Dictionary<string, float[]> full;
        using (var model = new TinyCausalLM(seed: 2))
        using (var reference = model.Clone())
        using (var trainer = new DpoTrainer(model, reference, Args(Path.Combine(dir.Path, "full")), data, padTokenId: 0))
        {
            trainer.Train();
            full = Weights(model);
        }

        var output = Path.Combine(dir.Path, "stopped");
        using (var model = new TinyCausalLM(seed: 2))
        using (var reference = model.Clone())
        using (var trainer = new DpoTrainer(model, reference, Args(output), data, padTokenId: 0) { CheckpointOnCancel = true })
        using (var cts = new CancellationTokenSource())
        {
            trainer.StepCompleted += (step, _) =>
            {
                if (step == 6)
                {
                    cts.Cancel();
                }
            };
            var e = Assert.Throws<TrainingInterruptedException>(() => trainer.Train(cancellationToken: cts.Token));
            Assert.Equal(6, e.Step);
            Assert.Equal(Path.Combine(output, "checkpoint-6"), e.Checkpoint);
            Assert.IsAssignableFrom<OperationCanceledException>(e);
        }

        // checkpoint-4 (save_steps) and checkpoint-6 (the stop); resume picks 6 and says so.
        Assert.Equal(["checkpoint-4", "checkpoint-6"], Directory.GetDirectories(output, "checkpoint-*").Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Directory.CreateDirectory(Path.Combine(output, "checkpoint-8.tmp"));
        var args = Args(output);
        args.Resume = true;
        using (var model = new TinyCausalLM(seed: 2))
        using (var reference = model.Clone())
        using (var trainer = new DpoTrainer(model, reference, args, data, padTokenId: 0))
        {
            ResumeInfo? info = null;
            trainer.Resuming += i => info = i;
            Assert.Equal(9, trainer.Train().GlobalStep);
            Assert.NotNull(info);
            Assert.Equal(6, info.Step);
            Assert.EndsWith("checkpoint-6", info.Checkpoint, StringComparison.Ordinal);
            var skipped = Assert.Single(info.Skipped);
            Assert.EndsWith("checkpoint-8.tmp", skipped.Directory, StringComparison.Ordinal);
            Assert.Contains("incomplete", skipped.Reason, StringComparison.Ordinal);
            var resumed = Weights(model);
            Assert.All(full, kv => Assert.Equal(kv.Value, resumed[kv.Key]));
        }
    }

    [Fact]
    public void CancellationOnRankOneWritesNothingAndStillStopsAfterTheStep()
    {
        using var dir = TestPaths.CreateTempDir();
        var data = TinyData.Pairs(8);
        using var model = new TinyCausalLM(seed: 2);
        using var reference = model.Clone();
        var output = Path.Combine(dir.Path, "rank1");
        using var trainer = new DpoTrainer(model, reference, Args(output), data, padTokenId: 0) { Rank = 1, WorldSize = 2, CheckpointOnCancel = true };
        using var cts = new CancellationTokenSource();
        trainer.StepCompleted += (step, _) => cts.Cancel();
        var e = Assert.Throws<TrainingInterruptedException>(() => trainer.Train(cancellationToken: cts.Token));
        Assert.Equal(1, e.Step);
        Assert.Null(e.Checkpoint);
        Assert.False(Directory.Exists(output));
    }
}
