using DpoSharp.Data;
using DpoSharp.Losses;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Training;

/// <summary>Short runs of the reference-free losses on a tiny model: no reference is built, the policy learns to
/// prefer chosen completions, and the loss's own metrics are logged.</summary>
[Collection(nameof(TorchRngCollection))]
public class ReferenceFreeTrainingTests
{
    [Theory]
    [InlineData(LossTypes.Orpo)]
    [InlineData(LossTypes.Simpo)]
    [InlineData(LossTypes.Cpo)]
    public void ShortRunRaisesMarginsWithoutAReferenceModel(string lossType)
    {
        using var dir = TestPaths.CreateTempDir();
        using var model = new TinyCausalLM(seed: 3);
        var args = new DpoOptions
        {
            OutputDir = dir.Path,
            LossType = [lossType],
            Beta = lossType == LossTypes.Cpo ? 0.1 : 1.0,
            LearningRate = 2e-2,
            PerDeviceTrainBatchSize = 4,
            MaxSteps = 16,
            LoggingSteps = 4,
            SaveSteps = 1000,
            Seed = 123,
            ReportTo = [ReportTarget.None],
        };

        // A reference model passed in is not used either: the loss needs none.
        using var trainer = new DpoTrainer(model, refModel: null, args, TinyData.Pairs(32, seed: 1), padTokenId: 0);
        trainer.Train();
        Assert.Equal("none", trainer.TrainReference!.Kind);
        var logs = trainer.State.LogHistory.Where(e => e.Metrics.ContainsKey("loss")).Select(e => e.Metrics).ToList();
        var first = logs[0];
        var last = logs[^1];
        Assert.True(last["rewards/margins"] > first["rewards/margins"], $"{last["rewards/margins"]} vs {first["rewards/margins"]}");
        Assert.True(last["rewards/accuracies"] >= first["rewards/accuracies"]);
        Assert.True(last["loss"] < first["loss"], $"{last["loss"]} vs {first["loss"]}");
        Assert.True(last["nll_loss"] < first["nll_loss"], "the chosen NLL term is trained too");
        if (lossType == LossTypes.Orpo)
        {
            Assert.True(last["log_odds_chosen"] > first["log_odds_chosen"]);
            Assert.True(last["log_odds_ratio"] > first["log_odds_ratio"]);
        }
        else
        {
            Assert.False(last.ContainsKey("log_odds_ratio"));
        }
    }
}
