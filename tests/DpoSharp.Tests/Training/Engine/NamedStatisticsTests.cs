using DpoSharp.Training.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Training.Engine;

public class NamedStatisticsTests
{
    [Fact]
    public void MetricsAreSumsOverTheirCountsInFirstAddedOrder()
    {
        using var s = new NamedStatistics();
        using (NewDisposeScope())
        {
            s.Add("loss", tensor(1.5f), "pairs");
            s.Add("rewards/accuracies", tensor(1f), "pairs");
            s.Add("mean_token_accuracy", tensor(3.0), "tokens");
            s.AddCount("pairs", 2);
            s.AddCount("tokens", 4);
            s.Add("loss", tensor(0.5f), "pairs");
            s.AddCount("pairs", 2);
        }

        var m = s.ToMetrics("eval_");
        Assert.Equal(["eval_loss", "eval_rewards/accuracies", "eval_mean_token_accuracy"], m.Keys);
        Assert.Equal(2.0 / 4, m["eval_loss"]);
        Assert.Equal(1.0 / 4, m["eval_rewards/accuracies"]);
        Assert.Equal(3.0 / 4, m["eval_mean_token_accuracy"]);
    }

    [Fact]
    public void StatisticsAverageAcrossMicroBatchesAndResetForTheNextWindow()
    {
        // (Replaces the tests of the former MetricsAccumulator, which NamedStatistics supersedes.)
        using var window = new NamedStatistics();
        float[] r1 = [0.1f, 0.3f], r2 = [0.5f, -0.1f, 0.2f];
        foreach (var (rewards, loss) in new[] { (r1, 0.75f), (r2, 0.25f) })
        {
            using var scope = NewDisposeScope();
            window.Add("rewards/chosen", tensor(rewards).sum(), "pairs");
            window.Add("loss", tensor(loss * rewards.Length), "pairs");
            window.AddCount("pairs", rewards.Length);
        }

        var m = window.ToMetrics("eval_");
        Assert.Equal(r1.Concat(r2).Select(x => (double)x).Average(), m["eval_rewards/chosen"], 6);
        Assert.Equal(((0.75 * 2) + (0.25 * 3)) / 5, m["eval_loss"], 6);
        Assert.Equal(["rewards/chosen", "loss"], m.Keys.Select(k => k["eval_".Length..]));
        window.Reset();
        using (NewDisposeScope())
        {
            window.Add("loss", tensor(2f), "pairs");
        }

        window.AddCount("pairs", 1);
        Assert.Equal(2, window.ToMetrics("")["loss"], 6);
    }

    [Fact]
    public void SumsKeepTheirDtypeAndReadExactly()
    {
        // float32 sums stay float32 (DPO's statistics), float64 ones float64 (SFT's): the read value is the sum's own.
        using var s = new NamedStatistics();
        float f32 = 0;
        double f64 = 0;
        using (NewDisposeScope())
        {
            foreach (var x in new[] { 0.1f, 0.2f, 0.3f, 1e-8f })
            {
                s.Add("a", tensor(x), "n");
                s.Add("b", tensor((double)x), "n");
                f32 += x;
                f64 += x;
            }
        }

        s.AddCount("n", 1);
        var m = s.ToMetrics("");
        Assert.Equal((double)f32, m["a"]);
        Assert.Equal(f64, m["b"]);
    }

    [Fact]
    public void OneReadReturnsTheExtraTensorsAndAMissingCountDividesByOne()
    {
        using var s = new NamedStatistics();
        using var scope = NewDisposeScope();
        s.Add("x", tensor(6f), "never_counted");
        var m = s.ToMetrics("", [tensor(2.5f), tensor(7L)], out var extra);
        Assert.Equal(6.0, m["x"]);
        Assert.Equal([2.5, 7.0], extra);
    }

    [Fact]
    public void AddingAnotherMergesSumsAndCountsAndResetKeepsTheNames()
    {
        using var window = new NamedStatistics();
        for (int i = 1; i <= 3; i++)
        {
            using var batch = new NamedStatistics();
            using (NewDisposeScope())
            {
                batch.Add("loss", tensor((float)i), "pairs");
                batch.AddCount("pairs", 1);
            }

            window.Add(batch);
        }

        Assert.Equal(2.0, window.ToMetrics("")["loss"]);
        Assert.Equal(3, window.Count("pairs"));
        window.Reset();
        Assert.True(window.Contains("loss"));
        Assert.Equal(0, window.Count("pairs"));
        Assert.Equal(0.0, window.ToMetrics("")["loss"]);
        Assert.Throws<InvalidOperationException>(() =>
        {
            using var scope = NewDisposeScope();
            window.Add("loss", tensor(1f), "tokens");
        });
    }

    [Fact]
    public void RoundsOfAddAndReadLeaveNoLiveTensors()
    {
        using var s = new NamedStatistics();
        static long Live() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        void Round()
        {
            using var scope = NewDisposeScope();
            for (int i = 0; i < 4; i++)
            {
                s.Add("loss", tensor((float)i), "pairs");
                s.Add("rewards/margins", rand(3).sum(), "pairs");
                s.AddCount("pairs", 1);
            }

            s.ToMetrics("");
            s.Reset();
        }

        Round();
        long after1 = Live();
        for (int r = 0; r < 5; r++)
        {
            Round();
        }

        Assert.Equal(after1, Live());
        s.Clear();
        Assert.False(s.Contains("loss"));
    }
}
