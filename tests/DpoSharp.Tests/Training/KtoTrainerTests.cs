using DpoSharp.Data;
using DpoSharp.Training;
using DpoSharp.Training.Engine;

namespace DpoSharp.Tests.Training;

/// <summary>Short KTO runs on a tiny model: desirable rewards rise, undesirable ones fall, the reference stays put,
/// and the DPO/KTO options refuse each other.</summary>
[Collection(nameof(TorchRngCollection))]
public class KtoTrainerTests
{
    private static List<TokenizedUnpaired> Data(int pairs, int seed) =>
        [.. TinyData.Pairs(pairs, seed: seed).SelectMany((p, i) => new[]
        {
            new TokenizedUnpaired(p.PromptIds, p.ChosenIds, true) { SourceIndex = 2 * i },
            new TokenizedUnpaired(p.PromptIds, p.RejectedIds, false) { SourceIndex = (2 * i) + 1 },
        })];

    [Theory]
    [InlineData("kto")]
    [InlineData("apo_zero_unpaired")]
    public void ShortRunSeparatesDesirableFromUndesirableRewards(string lossType)
    {
        using var dir = TestPaths.CreateTempDir();
        using var model = new TinyCausalLM(seed: 3);
        using var reference = model.Clone();
        var refBefore = reference.Snapshot();
        var args = new DpoOptions
        {
            Algorithm = TrainingAlgorithm.Kto,
            LossType = [lossType],
            OutputDir = dir.Path,
            Beta = 0.5,
            LearningRate = 2e-2,
            PerDeviceTrainBatchSize = 8,
            PerDeviceEvalBatchSize = 8,
            MaxSteps = 16,
            LoggingSteps = 4,
            SaveSteps = 1000,
            EvalStrategy = EvalStrategy.Steps,
            EvalSteps = 16,
            Seed = 123,
            ReportTo = [ReportTarget.None],
        };
        using var trainer = new KtoTrainer(model, reference, args, Data(16, 1), padTokenId: 0, evalDataset: Data(8, 2));
        Assert.Equal(lossType, trainer.Loss.Name);
        var before = trainer.Evaluate();
        trainer.Train();
        var after = trainer.State.LogHistory.Last(e => e.Metrics.ContainsKey("eval_loss")).Metrics;
        var logs = trainer.State.LogHistory.Where(e => e.Metrics.ContainsKey("loss")).Select(e => e.Metrics).ToList();

        // Policy == reference at the start: every reward 0, KL 0, kto loss 1 − σ(0) = 0.5.
        Assert.Equal(0.0, before["eval_rewards/chosen"], 6);
        Assert.Equal(0.0, before["eval_kl"], 6);
        Assert.Equal(0.5, before["eval_loss"], 5);
        Assert.True(after["eval_rewards/chosen"] > 0, $"{after["eval_rewards/chosen"]}");
        Assert.True(after["eval_rewards/rejected"] < 0, $"{after["eval_rewards/rejected"]}");
        Assert.Equal(after["eval_rewards/chosen"] - after["eval_rewards/rejected"], after["eval_rewards/margins"], 9);
        Assert.True(after["eval_loss"] < before["eval_loss"]);
        Assert.True(logs[^1]["rewards/margins"] > logs[0]["rewards/margins"]);
        Assert.True(after["eval_logps/chosen"] > before["eval_logps/chosen"]);
        Assert.True(after["eval_logps/rejected"] < before["eval_logps/rejected"]);
        Assert.All(logs, m => Assert.True(m["kl"] >= 0));
        if (lossType == "apo_zero_unpaired")
        {
            Assert.All(logs, m => Assert.Equal(0.0, m["kl"]));
        }

        var refAfter = reference.Snapshot();
        foreach (var (k, w) in refBefore)
        {
            Assert.Equal(w, refAfter[k]);
        }
    }

    [Fact]
    public void KtoAndDpoOptionsRefuseEachOther()
    {
        string Refused(Action<DpoOptions> set)
        {
            var o = new DpoOptions();
            set(o);
            return Assert.Throws<DpoSharpException>(o.Validate).Message;
        }

        Assert.Contains("algorithm", Refused(o => o.LossType = ["kto"]));
        Assert.Contains("desirable_weight", Refused(o => o.DesirableWeight = 2));
        Assert.Contains("label_smoothing", Refused(o => { o.Algorithm = TrainingAlgorithm.Kto; o.LabelSmoothing = 0.1; }));
        Assert.Contains("loss_type", Refused(o => { o.Algorithm = TrainingAlgorithm.Kto; o.LossType = ["ipo"]; }));
        Assert.Contains("per_device_train_batch_size", Refused(o => { o.Algorithm = TrainingAlgorithm.Kto; o.PerDeviceTrainBatchSize = 1; }));
        Assert.Contains("undesirable_weight", Refused(o => { o.Algorithm = TrainingAlgorithm.Kto; o.UndesirableWeight = 0; }));

        // The DPO default loss_type means kto; apo_zero_unpaired works with batches of one.
        var kto = new DpoOptions { Algorithm = TrainingAlgorithm.Kto, DesirableWeight = 1.3 };
        kto.Validate();
        Assert.Equal("kto", kto.KtoLossType);
        new DpoOptions { Algorithm = TrainingAlgorithm.Kto, LossType = ["apo_zero_unpaired"], PerDeviceTrainBatchSize = 1 }.Validate();
    }
}
