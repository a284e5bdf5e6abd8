namespace DpoSharp.Tests.TestSupport;

/// <summary>Made-up TRL-named metrics of a run's logging steps, for sink and chart tests.</summary>
internal static class SampleMetrics
{
    /// <summary>The metrics of logging step <paramref name="i"/>: loss falling, margins and accuracies rising.</summary>
    public static Dictionary<string, double> Step(int i) => new()
    {
        ["loss"] = 0.69 - (0.05 * i),
        ["rewards/chosen"] = 0.01 * i,
        ["rewards/rejected"] = -0.02 * i,
        ["rewards/margins"] = 0.03 * i,
        ["rewards/accuracies"] = Math.Min(1, 0.5 + (0.1 * i)),
        ["learning_rate"] = 1e-6,
    };
}
