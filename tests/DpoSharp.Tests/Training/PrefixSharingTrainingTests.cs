using DpoSharp.Models;
using DpoSharp.Training;
using DpoSharp.Training.Engine;

namespace DpoSharp.Tests.Training;

/// <summary>
/// A DPO run with prefix sharing (the default) or padding-free batches logs the losses, rewards and log-probs of one
/// row per completion over two optimizer steps: the trainer and its frozen-copy or precomputed reference go through
/// the layout. (Weights are not compared: AdamW's first steps are ≈ lr·sign(g), so fp32 rounding noise in gradients
/// that are ≈ 0 moves a weight by up to 2·lr; gradients themselves are compared in PrefixSharingTests.)
/// </summary>
[Collection(nameof(TorchRngCollection))]
public class PrefixSharingTrainingTests
{
    public PrefixSharingTrainingTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    private static (double Loss, IReadOnlyDictionary<string, double> Log) Train(string type, bool sharing, bool paddingFree, bool precompute)
    {
        using var tmp = TestPaths.CreateTempDir();
        using var model = TinyModels.Create(type);
        var args = new DpoOptions
        {
            OutputDir = tmp.Path,
            MaxSteps = 2,
            PerDeviceTrainBatchSize = 3,
            LearningRate = 1e-3,
            LoggingSteps = 2,
            ReportTo = [ReportTarget.None],
            PrefixSharing = sharing,
            PaddingFree = paddingFree,
            PrecomputeRefLogProbs = precompute,
        };
        using var trainer = new DpoTrainer(model, refModel: null, args, TinyModels.Pairs(count: 6), padTokenId: 0);
        var output = trainer.Train();
        return (output.TrainingLoss, output.LastLog);
    }

    [Theory]
    [InlineData("mistral", false)]
    [InlineData("phi", true)]
    public void PrefixSharedAndPaddingFreeRunsTrainTheWeightsOfOneRowPerCompletion(string type, bool precompute)
    {
        var (loss, log) = Train(type, sharing: false, paddingFree: false, precompute);
        var keys = log.Keys.Where(k => k.StartsWith("rewards/", StringComparison.Ordinal) || k.StartsWith("logps/", StringComparison.Ordinal) || k == "loss").ToList();
        Assert.True(keys.Count >= 6, string.Join(", ", log.Keys));
        foreach (var (sharing, free) in new[] { (true, false), (true, true), (false, true) })
        {
            var (l, other) = Train(type, sharing, free, precompute);
            Assert.True(Math.Abs(l - loss) <= 1e-5, $"sharing {sharing} padding-free {free}: loss {l} vs {loss}");
            foreach (var k in keys)
            {
                Assert.True(Math.Abs(other[k] - log[k]) <= 1e-4 * Math.Max(1, Math.Abs(log[k])), $"sharing {sharing} padding-free {free}: {k} {other[k]} vs {log[k]}");
            }
        }
    }
}
