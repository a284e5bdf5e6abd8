namespace DpoSharp.Training.Engine;

/// <summary>One logged record: the optimizer step and TRL-named metrics (<c>loss</c>, <c>rewards/margins</c>, …).</summary>
public sealed record TrainerLogEntry(int Step, IReadOnlyDictionary<string, double> Metrics);

/// <summary>What a training run returns.</summary>
/// <param name="GlobalStep">Optimizer steps taken in total (including those before a resume).</param>
/// <param name="TrainingLoss">Mean loss over the steps this call ran.</param>
/// <param name="Seconds">Wall time of this call.</param>
/// <param name="LastLog">The last logged training metrics.</param>
public sealed record TrainOutput(int GlobalStep, double TrainingLoss, double Seconds, IReadOnlyDictionary<string, double> LastLog);

/// <summary>
/// The trainer's progress, saved in every checkpoint as <c>trainer_state.json</c> (TRL's <c>TrainerState</c>
/// plus the data position needed for an exact resume).
/// </summary>
public sealed class TrainerState
{
    /// <summary>Optimizer steps taken.</summary>
    public int GlobalStep { get; set; }

    /// <summary>Fractional epoch (steps / steps per epoch).</summary>
    public double Epoch { get; set; }

    /// <summary>Total steps of the run.</summary>
    public int TotalSteps { get; set; }

    /// <summary>Non-pad tokens seen so far (TRL's <c>num_tokens</c>).</summary>
    public long NumTokens { get; set; }

    /// <summary>Data position: the epoch being read.</summary>
    public int DataEpoch { get; set; }

    /// <summary>Data position: the next micro-batch index within <see cref="DataEpoch"/>.</summary>
    public int MicroBatch { get; set; }

    /// <summary>Seed of the data order (each epoch's shuffle is derived from it and the epoch number).</summary>
    public int Seed { get; set; }

    /// <summary>
    /// Data layout the data position refers to: per-device batch size, gradient accumulation steps, number of
    /// training pairs and world size (0 when unknown, as in checkpoints written before these were recorded).
    /// A checkpoint only resumes into a run with the same layout.
    /// </summary>
    public int PerDeviceTrainBatchSize { get; set; }

    /// <inheritdoc cref="PerDeviceTrainBatchSize"/>
    public int GradientAccumulationSteps { get; set; }

    /// <inheritdoc cref="PerDeviceTrainBatchSize"/>
    public int NumTrainPairs { get; set; }

    /// <inheritdoc cref="PerDeviceTrainBatchSize"/>
    public int WorldSize { get; set; }

    /// <summary>Scalar state of the objective (e.g. the running reward mean of <c>bco_pair</c>), as of the last
    /// checkpoint step; saved as <c>loss_state</c>.</summary>
    public Dictionary<string, double> LossState { get; set; } = [];

    /// <summary>Every logged record so far (training and evaluation).</summary>
    public List<TrainerLogEntry> LogHistory { get; set; } = [];
}
