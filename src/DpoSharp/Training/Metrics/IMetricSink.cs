namespace DpoSharp.Training.Metrics;

/// <summary>
/// Receives the metrics of one logging step (TRL names: <c>loss</c>, <c>rewards/margins</c>, …; evaluation metrics
/// <c>eval_</c>-prefixed). Sinks are written by rank 0 only; <see cref="Close"/> finishes files (charts, flushes).
/// </summary>
public interface IMetricSink : IDisposable
{
    /// <summary>Records <paramref name="metrics"/> for optimizer step <paramref name="step"/>.</summary>
    void Log(long step, IReadOnlyDictionary<string, double> metrics);

    /// <summary>Flushes and finishes the sink; further <see cref="Log"/> calls are errors. Idempotent.</summary>
    void Close();
}

/// <summary>TRL's metric names, for sinks, charts and the trainer.</summary>
public static class MetricNames
{
    /// <summary>Mean training loss over the logging window.</summary>
    public const string Loss = "loss";

    /// <summary>Gradient norm before clipping.</summary>
    public const string GradNorm = "grad_norm";

    /// <summary>Learning rate after the step.</summary>
    public const string LearningRate = "learning_rate";

    /// <summary>Fractional epoch.</summary>
    public const string Epoch = "epoch";

    /// <summary>Tokens (attention-mask ones) seen so far.</summary>
    public const string NumTokens = "num_tokens";

    /// <summary>Steps the non-finite guard skipped so far in this run (logged once it is above 0; not in TRL).</summary>
    public const string SkippedSteps = "skipped_steps";

    /// <summary>Mean chosen reward β·(log π − log π_ref).</summary>
    public const string RewardsChosen = "rewards/chosen";

    /// <summary>Mean rejected reward.</summary>
    public const string RewardsRejected = "rewards/rejected";

    /// <summary>Fraction of pairs whose chosen reward exceeds the rejected one.</summary>
    public const string RewardsAccuracies = "rewards/accuracies";

    /// <summary>Mean chosen − rejected reward.</summary>
    public const string RewardsMargins = "rewards/margins";

    /// <summary>Mean chosen log-prob sum.</summary>
    public const string LogpsChosen = "logps/chosen";

    /// <summary>Mean rejected log-prob sum.</summary>
    public const string LogpsRejected = "logps/rejected";

    /// <summary>Mean logit over chosen completion tokens.</summary>
    public const string LogitsChosen = "logits/chosen";

    /// <summary>Mean logit over rejected completion tokens.</summary>
    public const string LogitsRejected = "logits/rejected";

    /// <summary>NLL of the chosen completions (sft / rpo_alpha).</summary>
    public const string NllLoss = "nll_loss";

    /// <summary>Training throughput in pairs per second.</summary>
    public const string PairsPerSecond = "pairs_per_second";

    /// <summary>Training throughput in tokens per second.</summary>
    public const string TokensPerSecond = "tokens_per_second";

    /// <summary>Prefix of evaluation metrics (<c>eval_loss</c>, <c>eval_rewards/margins</c>).</summary>
    public const string EvalPrefix = "eval_";
}
