namespace DpoSharp.Training.Engine;

/// <summary>
/// Learning-rate schedules with transformers' <c>get_scheduler</c> semantics, as pure functions of the scheduler
/// step s (the number of optimizer steps already taken). The optimizer's k-th step (1-based) uses
/// <c>LearningRate(k − 1)</c>; after it, transformers logs <c>LearningRate(k)</c> as <c>learning_rate</c>.
/// </summary>
public sealed class LrSchedule
{
    /// <summary>Creates a schedule.</summary>
    /// <param name="type">The schedule.</param>
    /// <param name="baseLearningRate">Peak learning rate.</param>
    /// <param name="totalSteps">Optimizer steps of the whole run (≥ 1).</param>
    /// <param name="warmupSteps">Warm-up steps (≥ 0).</param>
    public LrSchedule(LrSchedulerType type, double baseLearningRate, int totalSteps, int warmupSteps)
    {
        OptionValues.RequireDefined(type, "lr_scheduler_type");
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        ArgumentOutOfRangeException.ThrowIfLessThan(totalSteps, 1);
        Type = type;
        BaseLearningRate = baseLearningRate;
        TotalSteps = totalSteps;
        WarmupSteps = warmupSteps;
    }

    /// <summary>The schedule.</summary>
    public LrSchedulerType Type { get; }

    /// <summary>The peak learning rate.</summary>
    public double BaseLearningRate { get; }

    /// <summary>Optimizer steps of the run.</summary>
    public int TotalSteps { get; }

    /// <summary>Warm-up steps.</summary>
    public int WarmupSteps { get; }

    /// <summary>
    /// Warm-up steps as transformers derives them: <paramref name="warmupSteps"/> when positive, else
    /// ⌈<paramref name="warmupRatio"/> · <paramref name="totalSteps"/>⌉.
    /// </summary>
    public static int ResolveWarmupSteps(int totalSteps, int warmupSteps, double warmupRatio)
        => warmupSteps > 0 ? warmupSteps : (int)Math.Ceiling(totalSteps * warmupRatio);

    /// <summary>The schedule <paramref name="options"/> select for a run of <paramref name="totalSteps"/> steps.</summary>
    public static LrSchedule FromOptions(TrainingOptions options, int totalSteps)
    {
        ArgumentNullException.ThrowIfNull(options);
        return FromOptions(options.Schedule, options.Optimizer, totalSteps);
    }

    /// <summary>The schedule of <paramref name="schedule"/> peaking at <paramref name="optimizer"/>'s learning rate.</summary>
    public static LrSchedule FromOptions(ScheduleOptions schedule, OptimizerOptions optimizer, int totalSteps)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(optimizer);
        return new LrSchedule(schedule.LrSchedulerType, optimizer.LearningRate, totalSteps, ResolveWarmupSteps(totalSteps, schedule.WarmupSteps, schedule.WarmupRatio));
    }

    /// <summary>The factor applied to the base rate after <paramref name="step"/> optimizer steps.</summary>
    public double Multiplier(int step) => Type switch
    {
        LrSchedulerType.Constant => ConstantFactor(),
        LrSchedulerType.ConstantWithWarmup => ConstantWithWarmupFactor(step, WarmupSteps),
        LrSchedulerType.Linear => LinearFactor(step, WarmupSteps, TotalSteps),
        _ => CosineFactor(step, WarmupSteps, TotalSteps),
    };

    /// <summary>The learning rate after <paramref name="step"/> optimizer steps (= the rate of step <paramref name="step"/> + 1).</summary>
    public double LearningRate(int step) => BaseLearningRate * Multiplier(step);

    /// <summary><c>constant</c>: 1.</summary>
    public static double ConstantFactor() => 1.0;

    /// <summary><c>constant_with_warmup</c>: s / max(1, w) during warm-up, then 1.</summary>
    public static double ConstantWithWarmupFactor(int step, int warmup)
        => step < warmup ? (double)step / Math.Max(1, warmup) : 1.0;

    /// <summary><c>linear</c>: warm-up, then max(0, (T − s) / max(1, T − w)).</summary>
    public static double LinearFactor(int step, int warmup, int total)
        => step < warmup ? (double)step / Math.Max(1, warmup) : Math.Max(0.0, (double)(total - step) / Math.Max(1, total - warmup));

    /// <summary><c>cosine</c>: warm-up, then max(0, ½(1 + cos(2π·c·p))) with p = (s − w)/max(1, T − w) and c = ½ cycles.</summary>
    public static double CosineFactor(int step, int warmup, int total, double numCycles = 0.5)
    {
        if (step < warmup)
        {
            return (double)step / Math.Max(1, warmup);
        }

        double progress = (double)(step - warmup) / Math.Max(1, total - warmup);
        return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * numCycles * 2.0 * progress)));
    }
}
