using DpoSharp.Models;
using DpoSharp.Training;
using DpoSharp.Training.Engine;

namespace DpoSharp.Tests.Training;

/// <summary>
/// A DPO run with prefix sharing (the default) or padding-free batches logs the losses, rewards and log-probs of one
/// row per completion over two optimizer steps: the trainer and its frozen-copy or precomputed reference go through
/// the layout. (Weights are not compared: AdamW's first steps are ≈ lr·sign(g), so fp32 rounding noise in gradients
/// that are ≈ 0 moves a weight by up to 2·lr; gradients themselves are compared in PrefixSharingTests. The logged
/// metrics are step 2's: at step 1 the policy equals the reference, every reward margin is 0 up to fp32 rounding —
/// which depends on the layout and on the padding of the batch the reference log-probs were precomputed in — and
/// <c>rewards/accuracies</c>, a count of margins &gt; 0, is decided by that rounding.)
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
            LoggingSteps = 1,         // the last log is step 2's: at step 1 policy = reference and every margin is a ±1e-7 tie
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
