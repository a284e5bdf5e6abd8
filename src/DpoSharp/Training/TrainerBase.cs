using DpoSharp.Data;
using DpoSharp.Models;
using DpoSharp.Training.Engine;
using DpoSharp.Training.Metrics;

namespace DpoSharp.Training;

/// <summary>
/// What every trainer façade (<see cref="DpoTrainer"/>, <see cref="SftTrainer"/>) exposes of the shared
/// <see cref="TrainingLoop{TBatch}"/>: the run's state, events, rank hooks, sinks, evaluation and saving. A façade
/// builds its objective and data source, then attaches the loop.
/// </summary>
/// <typeparam name="TBatch">The batch type of the trainer's data.</typeparam>
public abstract class TrainerBase<TBatch> : IDisposable
    where TBatch : SequenceBatch
{
    private TrainingLoop<TBatch>? _loop;
    private bool _disposed;

    /// <summary>The training loop this trainer runs (objective-independent machinery).</summary>
    public TrainingLoop<TBatch> Loop => _loop ?? throw new InvalidOperationException("the trainer's loop is not attached yet.");

    /// <summary>The model being trained.</summary>
    public ICausalLM Model => Loop.Model;

    /// <summary>Step, epoch, data position and log history; saved in every checkpoint as <c>trainer_state.json</c>.</summary>
    public TrainerState State => Loop.State;

    /// <summary>Runs between backward and optimizer step (data-parallel all-reduce). Default: nothing.</summary>
    public IGradientSynchronizer GradientSynchronizer { get => Loop.GradientSynchronizer; set => Loop.GradientSynchronizer = value; }

    /// <summary>This process's rank: it trains on every <see cref="WorldSize"/>-th batch of each epoch's order
    /// starting at <see cref="Rank"/>; only rank 0 writes files.</summary>
    public virtual int Rank { get => Loop.Rank; set => Loop.Rank = value; }

    /// <summary>Number of data-parallel processes.</summary>
    public int WorldSize { get => Loop.WorldSize; set => Loop.WorldSize = value; }

    /// <summary>
    /// The data-parallel processes this trainer is one of (<c>mpirun -np N</c>: <c>DpoSharp.Distributed.MpiWorld</c>).
    /// Setting it sets <see cref="Rank"/>, <see cref="WorldSize"/> and the <see cref="GradientSynchronizer"/> (gradients
    /// summed over ranks, <see cref="Distributed.AllReduceGradientSynchronizer"/>); see
    /// <see cref="TrainingLoop{TBatch}.ProcessGroup"/> for what else is reduced. Default: one process.
    /// </summary>
    public virtual IProcessGroup ProcessGroup
    {
        get => Loop.ProcessGroup;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            Loop.ProcessGroup = value;
            Rank = value.Rank;
            WorldSize = value.WorldSize;
            GradientSynchronizer = value.WorldSize > 1 ? new Distributed.AllReduceGradientSynchronizer(value) : NoGradientSynchronizer.Instance;
        }
    }

    /// <summary>A directory whose tokenizer files (tokenizer.json, tokenizer_config.json, …) are copied next to
    /// every saved model, as TRL saves its processing class. Null (the default): the folder the model was loaded
    /// from (<see cref="ICausalLM.SourceDirectory"/>), if any; <c>""</c>: none.</summary>
    public string? TokenizerFilesSource { get => Loop.TokenizerFilesSource; set => Loop.TokenizerFilesSource = value; }

    /// <summary>Factories of metric sinks beyond the built-in jsonl/tensorboard ones, by report_to name (e.g. "png" → PngChartSink.Factory).</summary>
    public IDictionary<string, MetricSinkFactory> MetricSinkFactories => Loop.MetricSinkFactories;

    /// <summary>When the run is cancelled, checkpoint the last finished step before stopping. Default false.</summary>
    public bool CheckpointOnCancel { get => Loop.CheckpointOnCancel; set => Loop.CheckpointOnCancel = value; }

    /// <summary>The batch sampler: seeded random batches, or length-grouped ones with <c>group_by_length</c>;
    /// sharded by <see cref="Rank"/> / <see cref="WorldSize"/>.</summary>
    public BatchSampler Sampler => Loop.Sampler;

    /// <summary>Micro-batches of this rank per epoch.</summary>
    public int MicroBatchesPerEpoch => Loop.MicroBatchesPerEpoch;

    /// <summary>Optimizer steps per epoch.</summary>
    public int StepsPerEpoch => Loop.StepsPerEpoch;

    /// <summary>Optimizer steps of the run: max_steps, else epochs × steps per epoch.</summary>
    public int TotalSteps => Loop.TotalSteps;

    /// <summary>Raised on every logging step (training and <c>eval_</c> metrics), on every rank.</summary>
    public event Action<TrainerLogEntry>? Logged
    {
        add => Loop.Logged += value;
        remove => Loop.Logged -= value;
    }

    /// <summary>Raised when a run resumes: the checkpoint, its step, and the newer checkpoint folders passed over.</summary>
    public event Action<ResumeInfo>? Resuming
    {
        add => Loop.Resuming += value;
        remove => Loop.Resuming -= value;
    }

    /// <summary>Raised after every optimizer step with the global step and the total steps (for progress bars).</summary>
    public event Action<int, int>? StepCompleted
    {
        add => Loop.StepCompleted += value;
        remove => Loop.StepCompleted -= value;
    }

    /// <summary>Raised when the non-finite guard skips a step (NaN/inf loss or gradient norm; <c>max_bad_steps</c>).</summary>
    public event Action<SkippedStep>? StepSkipped
    {
        add => Loop.StepSkipped += value;
        remove => Loop.StepSkipped -= value;
    }

    /// <summary>
    /// Evaluates on the eval data (no gradients, dropout off) and returns <c>eval_</c>-prefixed metrics; empty
    /// without eval data.
    /// </summary>
    public IReadOnlyDictionary<string, double> Evaluate()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return Loop.Evaluate();
    }

    /// <summary>Saves the model as a Hugging Face directory (config.json + safetensors, tokenizer files from
    /// <see cref="TokenizerFilesSource"/>).</summary>
    public void SaveModel(string directory) => Loop.SaveModel(directory);

    /// <inheritdoc/>
    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Attaches the loop the façade built (once, from its constructor).</summary>
    protected void Attach(TrainingLoop<TBatch> loop) => _loop = loop;

    /// <summary>Runs the loop (see <see cref="TrainingLoop{TBatch}.Run"/>).</summary>
    protected TrainOutput RunLoop(string? resumeFromCheckpoint, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return Loop.Run(resumeFromCheckpoint, cancellationToken);
    }

    /// <summary>Disposes the loop, then what the façade owns (<see cref="DisposeObjective"/>).</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (disposing)
        {
            _loop?.Dispose();
            DisposeObjective();
        }
    }

    /// <summary>Disposes the façade's objective.</summary>
    protected abstract void DisposeObjective();
}
