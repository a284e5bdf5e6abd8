using System.ComponentModel;
using static DpoSharp.OptionChecks;

namespace DpoSharp.Training.Engine;

/// <summary>
/// AdamW and gradient clipping of a training run (transformers' <c>TrainingArguments</c> names). Part of
/// <see cref="TrainingOptions.Optimizer"/>; checked by <see cref="TrainingOptions.Validate"/>.
/// </summary>
public sealed class OptimizerOptions
{
    /// <summary>Peak learning rate of AdamW.</summary>
    /// <value>Default 1e-6 (TRL).</value>
    [Description("peak learning rate")]
    public double LearningRate { get; set; } = 1e-6;

    /// <summary>AdamW decoupled weight decay (never applied to biases and norm weights).</summary>
    /// <value>Default 0.</value>
    [Description("AdamW weight decay (not on biases and norms)")]
    public double WeightDecay { get; set; }

    /// <summary>AdamW β1.</summary>
    /// <value>Default 0.9.</value>
    [Description("AdamW beta1")]
    public double AdamBeta1 { get; set; } = 0.9;

    /// <summary>AdamW β2.</summary>
    /// <value>Default 0.999.</value>
    [Description("AdamW beta2")]
    public double AdamBeta2 { get; set; } = 0.999;

    /// <summary>AdamW ε.</summary>
    /// <value>Default 1e-8.</value>
    [Description("AdamW epsilon")]
    public double AdamEpsilon { get; set; } = 1e-8;

    /// <summary>Clip the global gradient norm to this; 0: no clipping.</summary>
    /// <value>Default 1.0.</value>
    [Description("gradient-norm clip (0: none)")]
    public double MaxGradNorm { get; set; } = 1.0;

    /// <summary>
    /// The non-finite guard: a step whose loss or gradient norm is NaN/inf is skipped (no weight or optimizer-state
    /// change, counted in <c>skipped_steps</c>, its pairs named in the run's warnings); after this many consecutive
    /// skipped steps the next bad one stops the run with a diagnosis. 0: stop at the first. TRL has no such option.
    /// </summary>
    /// <value>Default 3.</value>
    [Description("consecutive NaN/inf steps skipped (no weight change) before the run stops (0: stop at the first; not in TRL)")]
    public int MaxBadSteps { get; set; } = 3;

    /// <summary>A copy.</summary>
    public OptimizerOptions Clone() => (OptimizerOptions)MemberwiseClone();

    /// <summary>Throws <see cref="DpoSharpException"/> naming the first bad option.</summary>
    internal void Validate()
    {
        Require(Finite(LearningRate) && LearningRate >= 0, $"learning_rate must be a non-negative number (got {LearningRate}).");
        Require(Finite(WeightDecay) && WeightDecay >= 0, $"weight_decay must be a non-negative number (got {WeightDecay}).");
        Require(Finite(AdamBeta1) && AdamBeta1 is >= 0 and < 1, $"adam_beta1 must be in [0, 1) (got {AdamBeta1}).");
        Require(Finite(AdamBeta2) && AdamBeta2 is >= 0 and < 1, $"adam_beta2 must be in [0, 1) (got {AdamBeta2}).");
        Require(Finite(AdamEpsilon) && AdamEpsilon > 0, $"adam_epsilon must be a positive number (got {AdamEpsilon}).");
        Require(Finite(MaxGradNorm) && MaxGradNorm >= 0, $"max_grad_norm must be a non-negative number, 0 for no clipping (got {MaxGradNorm}).");
        Require(MaxBadSteps >= 0, $"max_bad_steps must be 0 (stop at the first NaN/inf step) or more (got {MaxBadSteps}).");
    }
}
