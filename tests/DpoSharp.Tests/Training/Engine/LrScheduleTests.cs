using DpoSharp.Training;
using DpoSharp.Training.Engine;

namespace DpoSharp.Tests.Training.Engine;

public class LrScheduleTests
{
    [Fact]
    public void LinearWarmsUpThenDecaysToZero()
    {
        var s = new LrSchedule(LrSchedulerType.Linear, 1e-3, totalSteps: 10, warmupSteps: 2);
        // Warm-up s/2 for s < 2, then (10 − s)/8.
        double[] expected = [0, 0.5, 1, 7 / 8.0, 6 / 8.0, 5 / 8.0, 4 / 8.0, 3 / 8.0, 2 / 8.0, 1 / 8.0, 0];
        for (int step = 0; step <= 10; step++)
        {
            Assert.Equal(expected[step], s.Multiplier(step), 12);
            Assert.Equal(1e-3 * expected[step], s.LearningRate(step), 15);
        }

        Assert.Equal(0, s.Multiplier(12));
    }

    [Fact]
    public void CosineFollowsHalfACosine()
    {
        var s = new LrSchedule(LrSchedulerType.Cosine, 1, totalSteps: 12, warmupSteps: 4);
        Assert.Equal(0.25, s.Multiplier(1), 12);
        Assert.Equal(1, s.Multiplier(4), 12);
        Assert.Equal(0.5, s.Multiplier(8), 12);                               // half way: cos(π/2) = 0
        Assert.Equal(0.5 * (1 + Math.Cos(Math.PI * 2 / 8)), s.Multiplier(6), 12);
        Assert.Equal(0, s.Multiplier(12), 12);
    }

    [Fact]
    public void ConstantIgnoresWarmupAndConstantWithWarmupDoesNot()
    {
        var c = new LrSchedule(LrSchedulerType.Constant, 2e-6, 10, 5);
        Assert.All(Enumerable.Range(0, 11), step => Assert.Equal(2e-6, c.LearningRate(step)));
        var w = new LrSchedule(LrSchedulerType.ConstantWithWarmup, 1, 10, 4);
        Assert.Equal([0, 0.25, 0.5, 0.75, 1, 1, 1], Enumerable.Range(0, 7).Select(w.Multiplier));
    }

    [Fact]
    public void WarmupRatioRoundsUpAndStepsWin()
    {
        Assert.Equal(3, LrSchedule.ResolveWarmupSteps(25, 0, 0.1));          // ⌈2.5⌉
        Assert.Equal(7, LrSchedule.ResolveWarmupSteps(25, 7, 0.1));
        var o = new DpoOptions { LrSchedulerType = LrSchedulerType.Linear, LearningRate = 1e-5, WarmupRatio = 0.2 };
        var s = LrSchedule.FromOptions(o, 10);
        Assert.Equal(2, s.WarmupSteps);
        Assert.Equal(0.5e-5, s.LearningRate(1), 15);
        Assert.Throws<DpoSharpException>(() => new LrSchedule((LrSchedulerType)99, 1, 10, 0));
    }
}
