namespace DpoSharp.Training;

/// <summary>
/// Training options (TRL's <c>DPOConfig</c> names in PascalCase).
/// (Trainer-branch placeholder: the losses stream owns the full class with YAML/JSON loading and validation.)
/// </summary>
public sealed class DpoOptions
{
    /// <summary>Directory for checkpoints, metrics and the final model.</summary>
    /// <value>Default <c>dposharp-output</c>.</value>
    public string OutputDir { get; set; } = "dposharp-output";

    /// <summary>β: strength of the implicit KL penalty.</summary>
    /// <value>Default 0.1.</value>
    public double Beta { get; set; } = 0.1;

    /// <summary>Loss name(s) (TRL's <c>loss_type</c>).</summary>
    /// <value>Default <c>[sigmoid]</c>.</value>
    public List<string> LossType { get; set; } = ["sigmoid"];

    /// <summary>Weight of the RPO NLL term; null: none.</summary>
    /// <value>Default null.</value>
    public double? RpoAlpha { get; set; }

    /// <summary>WPO weighting of pairs.</summary>
    /// <value>Default false.</value>
    public bool UseWeighting { get; set; }

    /// <summary>Pairs per forward when precomputing reference log-probs; null: the eval batch size.</summary>
    /// <value>Default null.</value>
    public int? PrecomputeRefBatchSize { get; set; }

    /// <summary>Keep at most N checkpoints.</summary>
    /// <value>Default null.</value>
    public int? SaveTotalLimit { get; set; }

    /// <summary>When to evaluate: no, steps or epoch.</summary>
    /// <value>Default <c>no</c>.</value>
    public string EvalStrategy { get; set; } = "no";

    /// <summary>Metric sinks.</summary>
    /// <value>Default <c>[all]</c>.</value>
    public List<string> ReportTo { get; set; } = ["all"];

    /// <summary>Resume from this checkpoint directory.</summary>
    /// <value>Default null.</value>
    public string? ResumeFromCheckpoint { get; set; }

    /// <summary>Resume from the newest checkpoint in <see cref="OutputDir"/>.</summary>
    /// <value>Default false.</value>
    public bool Resume { get; set; }

    /// <summary>Evaluation steps: <see cref="EvalSteps"/> or <see cref="LoggingSteps"/>.</summary>
    public int EffectiveEvalSteps => EvalSteps ?? LoggingSteps;

    /// <summary>The sinks <see cref="ReportTo"/> selects.</summary>
    public IReadOnlyList<string> EffectiveReportTo =>
        ReportTo.Contains("none") ? [] : ReportTo.Contains("all") ? ["jsonl", "tensorboard", "png", "console"] : [.. ReportTo.Distinct()];

    /// <summary>The loss these options select.</summary>
    public DpoSharp.Losses.IPreferenceLoss CreateLoss() => TrainerLosses.Create(this);

    /// <summary>Label smoothing (cDPO / robust / exo_pair ε).</summary>
    /// <value>Default 0.</value>
    public double LabelSmoothing { get; set; }

    /// <summary>Ignore the reference model (log-probs treated as 0).</summary>
    /// <value>Default false.</value>
    public bool ReferenceFree { get; set; }

    /// <summary>Compute reference log-probs once before training (cached on disk) instead of running a frozen copy.</summary>
    /// <value>Default false.</value>
    public bool PrecomputeRefLogProbs { get; set; }


    /// <summary>Peak learning rate.</summary>
    /// <value>Default 1e-6.</value>
    public double LearningRate { get; set; } = 1e-6;

    /// <summary>Decoupled weight decay on 2-D+ weights (not on biases and norm weights).</summary>
    /// <value>Default 0.</value>
    public double WeightDecay { get; set; }

    /// <summary>AdamW β1.</summary>
    /// <value>Default 0.9.</value>
    public double AdamBeta1 { get; set; } = 0.9;

    /// <summary>AdamW β2.</summary>
    /// <value>Default 0.999.</value>
    public double AdamBeta2 { get; set; } = 0.999;

    /// <summary>AdamW ε.</summary>
    /// <value>Default 1e-8.</value>
    public double AdamEpsilon { get; set; } = 1e-8;

    /// <summary>Gradient-norm clipping threshold; 0 disables clipping (the norm is still logged).</summary>
    /// <value>Default 1.0.</value>
    public double MaxGradNorm { get; set; } = 1.0;

    /// <summary>Learning-rate schedule: constant, linear or cosine.</summary>
    /// <value>Default <c>linear</c>.</value>
    public string LrSchedulerType { get; set; } = "linear";

    /// <summary>Warmup steps (wins over <see cref="WarmupRatio"/> when positive).</summary>
    /// <value>Default 0.</value>
    public int WarmupSteps { get; set; }

    /// <summary>Warmup as a fraction of the total steps.</summary>
    /// <value>Default 0.</value>
    public double WarmupRatio { get; set; }

    /// <summary>Pairs per micro-batch per process.</summary>
    /// <value>Default 8.</value>
    public int PerDeviceTrainBatchSize { get; set; } = 8;

    /// <summary>Pairs per evaluation batch.</summary>
    /// <value>Default 8.</value>
    public int PerDeviceEvalBatchSize { get; set; } = 8;

    /// <summary>Micro-batches per optimizer step.</summary>
    /// <value>Default 1.</value>
    public int GradientAccumulationSteps { get; set; } = 1;

    /// <summary>Epochs (fractional allowed) when <see cref="MaxSteps"/> is not positive.</summary>
    /// <value>Default 3.</value>
    public double NumTrainEpochs { get; set; } = 3;

    /// <summary>Total optimizer steps; -1: use <see cref="NumTrainEpochs"/>.</summary>
    /// <value>Default -1.</value>
    public int MaxSteps { get; set; } = -1;

    /// <summary>Log metrics every N optimizer steps.</summary>
    /// <value>Default 10.</value>
    public int LoggingSteps { get; set; } = 10;

    /// <summary>Write a checkpoint every N optimizer steps.</summary>
    /// <value>Default 500.</value>
    public int SaveSteps { get; set; } = 500;

    /// <summary>Evaluate every N optimizer steps when <see cref="EvalStrategy"/> is steps; null: <see cref="LoggingSteps"/>.</summary>
    /// <value>Default null.</value>
    public int? EvalSteps { get; set; }

    /// <summary>Random seed (torch generator, data order, dropout).</summary>
    /// <value>Default 42.</value>
    public int Seed { get; set; } = 42;

    /// <summary>Turn dropout off in the policy during training.</summary>
    /// <value>Default true.</value>
    public bool DisableDropout { get; set; } = true;

    /// <summary>Checks every value; throws <see cref="DpoSharpException"/> naming the option.</summary>
    public void Validate()
    {
        static void Positive(string name, double v)
        {
            if (!(v > 0) || double.IsInfinity(v))
            {
                throw new DpoSharpException($"{name} must be positive (got {v}).");
            }
        }

        Positive("learning_rate", LearningRate);
        Positive("per_device_train_batch_size", PerDeviceTrainBatchSize);
        Positive("per_device_eval_batch_size", PerDeviceEvalBatchSize);
        Positive("gradient_accumulation_steps", GradientAccumulationSteps);
        Positive("logging_steps", LoggingSteps);
        Positive("save_steps", SaveSteps);
        if (MaxSteps <= 0)
        {
            Positive("num_train_epochs", NumTrainEpochs);
        }

        if (WarmupSteps < 0 || WeightDecay < 0 || MaxGradNorm < 0)
        {
            throw new DpoSharpException("warmup_steps, weight_decay and max_grad_norm must not be negative.");
        }

        if (WarmupRatio is < 0 or > 1)
        {
            throw new DpoSharpException($"warmup_ratio must be in [0, 1] (got {WarmupRatio}).");
        }

        if (LrSchedulerType is not ("constant" or "linear" or "cosine" or "constant_with_warmup"))
        {
            throw new DpoSharpException($"lr_scheduler_type '{LrSchedulerType}' is unknown; use constant, constant_with_warmup, linear or cosine.");
        }
    }
}
