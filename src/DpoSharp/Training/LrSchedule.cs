namespace DpoSharp.Training;

/// <summary>
/// Learning-rate schedule as in Hugging Face's schedulers, a pure function of the number of optimizer steps
/// already taken. (Trainer-branch placeholder with the losses stream's API; replaced by its LrSchedules.cs.)
/// </summary>
public sealed class LrSchedule
{
    private LrSchedule(string type, double baseLearningRate, int totalSteps, int warmupSteps)
    {
        Type = type;
        BaseLearningRate = baseLearningRate;
        TotalSteps = totalSteps;
        WarmupSteps = warmupSteps;
    }

    /// <summary>The schedule name.</summary>
    public string Type { get; }

    /// <summary>The peak learning rate.</summary>
    public double BaseLearningRate { get; }

    /// <summary>Optimizer steps of the run.</summary>
    public int TotalSteps { get; }

    /// <summary>Warm-up steps.</summary>
    public int WarmupSteps { get; }

    /// <summary>The schedule <paramref name="options"/> select for a run of <paramref name="totalSteps"/> steps.</summary>
    public static LrSchedule FromOptions(DpoOptions options, int totalSteps) =>
        new(options.LrSchedulerType, options.LearningRate, totalSteps, options.WarmupSteps > 0 ? options.WarmupSteps : (int)Math.Ceiling(totalSteps * options.WarmupRatio));

    /// <summary>The learning rate after <paramref name="step"/> optimizer steps.</summary>
    public double LearningRate(int step) => BaseLearningRate * Multiplier(step);

    /// <summary>The factor applied to the base rate after <paramref name="step"/> optimizer steps.</summary>
    public double Multiplier(int step)
    {
        if (Type == "constant")
        {
            return 1.0;
        }

        if (step < WarmupSteps)
        {
            return (double)step / Math.Max(1, WarmupSteps);
        }

        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        return Type switch
        {
            "constant_with_warmup" => 1.0,
            "linear" => Math.Max(0.0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps)),
            _ => Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * progress))),
        };
    }
}
