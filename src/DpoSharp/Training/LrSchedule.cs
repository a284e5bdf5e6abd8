namespace DpoSharp.Training;

/// <summary>
/// Learning-rate multipliers as in Hugging Face's schedulers: the step is the number of optimizer
/// steps already taken (0 for the first), warmup ramps linearly from 0.
/// </summary>
internal static class LrSchedule
{
    public static double Multiplier(string type, int step, int warmupSteps, int totalSteps)
    {
        if (step < warmupSteps && type != "constant")
        {
            return (double)step / Math.Max(1, warmupSteps);
        }

        switch (type)
        {
            case "constant":
            case "constant_with_warmup":
                return 1.0;
            case "linear":
                return Math.Max(0.0, (double)(totalSteps - step) / Math.Max(1, totalSteps - warmupSteps));
            case "cosine":
                double progress = (double)(step - warmupSteps) / Math.Max(1, totalSteps - warmupSteps);
                return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * progress)));
            default:
                throw new DpoSharpException($"lr_scheduler_type '{type}' is unknown; use constant, constant_with_warmup, linear or cosine.");
        }
    }
}
