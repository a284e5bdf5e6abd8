namespace DpoSharp.Training.Engine;

/// <summary>
/// Learning-rate schedules (transformers' <c>lr_scheduler_type</c>; config text <c>constant</c>,
/// <c>constant_with_warmup</c>, <c>linear</c>, <c>cosine</c>). See <see cref="LrSchedule"/>.
/// </summary>
public enum LrSchedulerType
{
    /// <summary>Constant rate, warm-up ignored (<c>constant</c>).</summary>
    Constant,

    /// <summary>Linear warm-up from 0, then constant (<c>constant_with_warmup</c>).</summary>
    ConstantWithWarmup,

    /// <summary>Linear warm-up, then linear decay to 0 at the last step (<c>linear</c>).</summary>
    Linear,

    /// <summary>Linear warm-up, then half a cosine down to 0 at the last step (<c>cosine</c>).</summary>
    Cosine,
}
