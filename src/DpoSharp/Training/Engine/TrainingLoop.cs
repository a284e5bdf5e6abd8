using System.Diagnostics;
using DpoSharp.Data;
using DpoSharp.Models;
using DpoSharp.Training.Metrics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Training.Engine;

/// <summary>
/// The one training loop every objective runs on: seeded batch sampling (sharded by rank), micro-batching with exact
/// gradient accumulation, the gradient-sync hook, grad-norm clipping, the AdamW step, the learning-rate schedule, the
/// logging window, evaluation cadence, the non-finite guard, cancellation, checkpoint cadence with atomic
/// checkpoints, exact resume, and the final save. What a step computes is the objective's business
/// (<see cref="ITrainingObjective{TBatch}"/>); what a batch is, the data source's (<see cref="IBatchSource{TBatch}"/>).
/// </summary>
/// <typeparam name="TBatch">The batch type of the data and objective.</typeparam>
public sealed partial class TrainingLoop<TBatch> : IDisposable
    where TBatch : SequenceBatch
{
    private readonly IBatchSource<TBatch> _train;
    private readonly IBatchSource<TBatch>? _eval;
    private readonly ITrainingObjective<TBatch> _objective;
    private readonly List<(string Name, Parameter Param)> _trainable;
    private readonly MicroBatchPlan _batches;
    private OptimizerSetup? _optimizer;
    private IMetricSink? _activeSink;
    private StepAccounting? _accounting;
    private NonFiniteGuard? _guard;
    private bool _disposed;
    private string? _tokenizerFilesSource;
    private bool _stopRequested;      // this rank's cancellation token fired (read at the step's reduce)
    private bool _peerStopRequested;  // some rank's did: every rank stops after the same step

    /// <summary>Creates a loop.</summary>
    /// <param name="model">The policy; trained in place (its parameters with <c>requires_grad</c>).</param>
    /// <param name="objective">What a batch's loss and statistics are.</param>
    /// <param name="train">Training data.</param>
    /// <param name="eval">Evaluation data, or null.</param>
    /// <param name="options">The run's options (validated by the caller).</param>
    public TrainingLoop(ICausalLM model, ITrainingObjective<TBatch> objective, IBatchSource<TBatch> train, IBatchSource<TBatch>? eval, TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(objective);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(options);
        Model = model;
        Options = options;
        _objective = objective;
        _train = train;
        _eval = eval is { Count: > 0 } ? eval : null;
        _batches = new MicroBatchPlan(train, options.Batching, options.Seed);
        _trainable = [.. model.Module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter))];
        if (_trainable.Count == 0)
        {
            throw new DpoSharpException("the model has no trainable parameters (requires_grad is false everywhere).");
        }
    }

    /// <summary>The model being trained.</summary>
    public ICausalLM Model { get; }

    /// <summary>The options.</summary>
    public TrainingOptions Options { get; }

    /// <summary>Step, epoch, data position and log history; saved in every checkpoint as <c>trainer_state.json</c>.</summary>
    public TrainerState State { get; private set; } = new();

    /// <summary>Runs between backward and optimizer step (data-parallel all-reduce). Default: nothing.</summary>
    public IGradientSynchronizer GradientSynchronizer { get; set; } = NoGradientSynchronizer.Instance;

    /// <summary>This process's rank: it trains on every <see cref="WorldSize"/>-th batch of each epoch's order
    /// starting at <see cref="Rank"/>; only rank 0 writes files.</summary>
    public int Rank { get; set; }

    /// <summary>Number of data-parallel processes.</summary>
    public int WorldSize { get; set; } = 1;

    /// <summary>
    /// The data-parallel processes (<c>mpirun -np N</c>: <c>DpoSharp.Distributed.MpiWorld</c>). With more than one:
    /// rank 0's trainable weights are broadcast before training; each step divides every rank's loss by the loss units
    /// of the whole step across ranks (so <see cref="GradientSynchronizer"/> sums the gradients into those of the
    /// global batch) and sums the step's loss, tokens, examples and stop requests, so the non-finite guard, the logged
    /// numbers and a Ctrl-C stop agree on every rank; the logging window's statistics and evaluation (sharded by batch)
    /// are summed over ranks. Set <see cref="Rank"/>, <see cref="WorldSize"/> and <see cref="GradientSynchronizer"/>
    /// to match (the trainers' <c>ProcessGroup</c> does). Default: one process.
    /// </summary>
    public IProcessGroup ProcessGroup { get; set; } = SingleProcessGroup.Instance;

    private bool Distributed => ProcessGroup.WorldSize > 1;

    /// <summary>Where logged metrics go (rank 0). Null: the file sinks <c>report_to</c> selects in <c>output_dir</c>,
    /// created by <see cref="Run"/> (resume-aware). Closed at the end of a run.</summary>
    public IMetricSink? MetricSink { get; set; }

    /// <summary>Factories of metric sinks beyond the built-in jsonl/tensorboard ones, by report_to name (e.g. "png" →
    /// DpoSharp.Charts' <c>PngChartSink.Factory</c>); used when <see cref="MetricSink"/> is null.</summary>
    public IDictionary<string, MetricSinkFactory> MetricSinkFactories { get; } = new Dictionary<string, MetricSinkFactory>(StringComparer.Ordinal);

    /// <summary>Sinks fed every logged record besides <see cref="MetricSink"/> or the file sinks (not closed by the loop).</summary>
    public IList<IMetricSink> AdditionalSinks { get; } = [];

    /// <summary>When the run is cancelled, checkpoint the last finished step before stopping (what <c>dposharp train</c>
    /// does on Ctrl-C). Default false: a cancelled run stops without writing anything.</summary>
    public bool CheckpointOnCancel { get; set; }

    /// <summary>A directory whose tokenizer files are copied next to every saved model (final model and checkpoints).
    /// Null (the default): the folder the model was loaded from (<see cref="ICausalLM.SourceDirectory"/>), when it still
    /// exists; an empty string: none.</summary>
    public string? TokenizerFilesSource
    {
        get => _tokenizerFilesSource is { Length: 0 } ? null : _tokenizerFilesSource ?? (Directory.Exists(Model.SourceDirectory) ? Model.SourceDirectory : null);
        set => _tokenizerFilesSource = value;
    }

    /// <summary>Raised on every logging step (training and <c>eval_</c> metrics), on every rank.</summary>
    public event Action<TrainerLogEntry>? Logged;

    /// <summary>Raised when a run resumes, once the checkpoint is loaded: which checkpoint, its step, and the newer
    /// checkpoint folders passed over.</summary>
    public event Action<ResumeInfo>? Resuming;

    /// <summary>Raised after every optimizer step with the global step and the total steps (for progress bars).</summary>
    public event Action<int, int>? StepCompleted;

    /// <summary>Raised when the non-finite guard skips a step (NaN/inf loss or gradient norm): the step, its rows
    /// and values (<c>max_bad_steps</c>).</summary>
    public event Action<SkippedStep>? StepSkipped;

    /// <summary>Training examples (before rank sharding).</summary>
    public int TrainCount => _train.Count;

    /// <summary>The batch sampler: seeded random batches, or length-grouped ones with <c>group_by_length</c>; sharded
    /// by <see cref="Rank"/> / <see cref="WorldSize"/>.</summary>
    public BatchSampler Sampler => _batches.Sampler(Rank, WorldSize);

    /// <summary>Micro-batches of this rank per epoch.</summary>
    public int MicroBatchesPerEpoch => Sampler.BatchesPerEpoch;

    /// <summary>Optimizer steps per epoch.</summary>
    public int StepsPerEpoch => (MicroBatchesPerEpoch + Options.Batching.GradientAccumulationSteps - 1) / Options.Batching.GradientAccumulationSteps;

    /// <summary>Optimizer steps of the run: max_steps, else epochs × steps per epoch.</summary>
    public int TotalSteps => Options.Schedule.MaxSteps > 0 ? Options.Schedule.MaxSteps : Math.Max(1, (int)Math.Ceiling(Options.Schedule.NumTrainEpochs * StepsPerEpoch));

    /// <summary>Parameters in optimizer-state order with their names (available once a run has started).</summary>
    public IReadOnlyList<(string Name, Parameter Param)> OptimizerOrder => _optimizer?.Order ?? [];

    private bool WritesFiles => Rank == 0 && Options.Checkpointing.OutputDir.Length > 0;

    /// <summary>
    /// Trains until max_steps or num_train_epochs, logging, evaluating and checkpointing as configured, then saves
    /// the final model and <c>trainer_state.json</c> in output_dir.
    /// </summary>
    /// <param name="resumeFromCheckpoint">A checkpoint directory to continue from; null: the options decide
    /// (<c>resume_from_checkpoint</c>, or the newest checkpoint with <c>resume</c>).</param>
    /// <param name="cancellationToken">Stops after the current optimizer step with an
    /// <see cref="OperationCanceledException"/>; with <see cref="CheckpointOnCancel"/> that step is checkpointed first
    /// (rank 0 with an output_dir) and the exception is a <see cref="TrainingInterruptedException"/>.</param>
    /// <exception cref="DpoSharpException">The loss or gradient norm became NaN/inf (the message names the step).</exception>
    /// <exception cref="TrainingInterruptedException">The run was cancelled with <see cref="CheckpointOnCancel"/>;
    /// <c>resume</c> continues it exactly.</exception>
    public TrainOutput Run(string? resumeFromCheckpoint = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        // Rank/WorldSize alone shard the data without communication (tests, custom launchers); a real group must agree.
        if (Distributed && (ProcessGroup.Rank != Rank || ProcessGroup.WorldSize != WorldSize))
        {
            throw new InvalidOperationException($"Rank/WorldSize ({Rank}/{WorldSize}) do not match the process group ({ProcessGroup.Rank}/{ProcessGroup.WorldSize}).");
        }

        using var runLock = WritesFiles ? RunLock.Acquire(Options.Checkpointing.OutputDir) : null; // one run per folder
        var wall = Stopwatch.StartNew();
        var device = Model.Device;
        int totalSteps = TotalSteps;
        var schedule = LrSchedule.FromOptions(Options, totalSteps);
        resumeFromCheckpoint = ResolveResumeCheckpoint(resumeFromCheckpoint, out var skipped, out var resumeWarning);
        var resumedState = resumeFromCheckpoint is null ? null : ReadCheckpointState(resumeFromCheckpoint);

        // The objective prepares (e.g. its reference) before any checkpoint weights are loaded into the policy: the
        // reference is the starting model.
        var resumedObjective = resumeFromCheckpoint is null ? null : Checkpointer.ReadObjectiveState(resumeFromCheckpoint, resumedState!);
        if (Distributed)
        {
            // Every rank starts from rank 0's trainable weights (LoRA: its adapters), also the reference copied from them.
            using var noGrad = no_grad();
            ProcessGroup.Broadcast([.. _trainable.Select(p => (Tensor)p.Param)]);
        }

        try
        {
            _objective.Begin(resumedObjective);
        }
        finally
        {
            resumedObjective?.DisposeTensors();
        }

        // Seeds the torch generator (dropout); the data order derives from the seed and the epoch. TorchSharp 0.107 has
        // no use_deterministic_algorithms, but CPU kernels are deterministic for a fixed thread count.
        State = new TrainerState
        {
            Seed = Options.Seed,
            TotalSteps = totalSteps,
            PerDeviceTrainBatchSize = Options.Batching.PerDeviceTrainBatchSize,
            GradientAccumulationSteps = Options.Batching.GradientAccumulationSteps,
            NumTrainPairs = TrainCount,
            WorldSize = WorldSize,
        };
        torch.random.manual_seed(Options.Seed);
        _optimizer?.Optimizer.Dispose();
        _optimizer = OptimizerFactory.CreateAdamW(_trainable, Options.Optimizer.LearningRate, Options.Optimizer.AdamBeta1, Options.Optimizer.AdamBeta2, Options.Optimizer.AdamEpsilon, Options.Optimizer.WeightDecay);
        _accounting?.Dispose();
        _accounting = new StepAccounting(device);
        _guard = new NonFiniteGuard(Options.Optimizer.MaxBadSteps);

        if (resumeFromCheckpoint is not null)
        {
            Checkpointer.LoadModelWeights(Model, resumeFromCheckpoint);
            Checkpointer.LoadOptimizerState(resumeFromCheckpoint, _optimizer!.StatesInOrder());
            Checkpointer.LoadRngState(resumeFromCheckpoint);
            resumedState!.TotalSteps = totalSteps;
            State = resumedState;
            Resuming?.Invoke(new ResumeInfo(resumeFromCheckpoint, State.GlobalStep, skipped) { Warning = resumeWarning });
        }

        IMetricSink? ownedSink = null;
        if (WritesFiles)
        {
            Directory.CreateDirectory(Options.Checkpointing.OutputDir);
            if (MetricSink is null)
            {
                ownedSink = CompositeMetricSink.FromOptions(Options, resumeFromCheckpoint is null ? null : State.GlobalStep, MetricSinkFactories.AsReadOnly());
            }
        }

        var main = Rank == 0 ? MetricSink ?? ownedSink : null;
        _activeSink = main;
        bool wasTraining = Model.Module.training;
        try
        {
            var output = Loop(totalSteps, schedule, device, wall, cancellationToken);
            main?.Close();
            return output;
        }
        finally
        {
            _activeSink = null;
            ownedSink?.Dispose();
            Model.Module.train(wasTraining);
        }
    }

    /// <summary>
    /// Evaluates on the eval data (no gradients, dropout off) and returns <c>eval_</c>-prefixed metrics: the
    /// objective's statistics plus <c>eval_runtime</c> and throughput. Empty when there is no eval data.
    /// </summary>
    public IReadOnlyDictionary<string, double> Evaluate()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_eval is null)
        {
            return new Dictionary<string, double>();
        }

        var device = Model.Device;
        bool wasTraining = Model.Module.training;
        Model.Module.eval();
        var sw = Stopwatch.StartNew();
        using var stats = new NamedStatistics();
        long tokens = 0;

        // Data parallel: rank r evaluates batches r, r + N, … and the sums are added up (every rank evaluates all
        // when there are fewer batches than ranks).
        int bs = Options.Batching.PerDeviceEvalBatchSize;
        bool shard = Distributed && (_eval.Count + bs - 1) / bs >= WorldSize;
        try
        {
            using var _ = no_grad();
            for (int start = shard ? Rank * bs : 0; start < _eval.Count; start += shard ? WorldSize * bs : bs)
            {
                using var scope = NewDisposeScope();
                var idx = Enumerable.Range(start, Math.Min(Options.Batching.PerDeviceEvalBatchSize, _eval.Count - start)).ToArray();
                using var batch = _eval.Collate(idx, device);
                tokens += batch.TokenCount;
                using var output = _objective.Compute(batch, DataSplit.Eval).Statistics;
                stats.Add(output);
            }
        }
        finally
        {
            Model.Module.train(wasTraining);
        }

        if (shard)
        {
            stats.SumAcrossRanks(ProcessGroup);
            Span<double> t = [tokens];
            ProcessGroup.SumInPlace(t);
            tokens = (long)t[0];
        }

        const string prefix = MetricNames.EvalPrefix;
        var m = stats.ToMetrics(prefix);
        double secs = Math.Max(sw.Elapsed.TotalSeconds, 1e-9);
        m[prefix + "runtime"] = secs;
        if (_objective.ExamplesPerSecondMetric is { } perSecond)
        {
            m[prefix + perSecond] = _eval.Count / secs;
        }

        m[prefix + MetricNames.TokensPerSecond] = tokens / secs;
        m[MetricNames.Epoch] = State.Epoch;
        return m;
    }

    /// <summary>Saves the model as a Hugging Face directory (config.json + safetensors + tokenizer files).</summary>
    public void SaveModel(string directory) => Checkpointer.SaveModelDirectory(Model, directory, TokenizerFilesSource);

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _optimizer?.Optimizer.Dispose();
        _accounting?.Dispose();
    }

    private TrainOutput Loop(int totalSteps, LrSchedule schedule, Device device, Stopwatch wall, CancellationToken cancellationToken)
    {
        int startStep = State.GlobalStep;
        var lastLog = (IReadOnlyDictionary<string, double>)new Dictionary<string, double>();
        var window = Stopwatch.StartNew();
        SetTrainMode();
        _peerStopRequested = false;
        while (State.GlobalStep < totalSteps)
        {
            // Data parallel: a stop another rank saw at the last step's reduce stops this one after the same step.
            _stopRequested = cancellationToken.IsCancellationRequested;
            if (_stopRequested || _peerStopRequested)
            {
                if (!CheckpointOnCancel)
                {
                    throw new OperationCanceledException(cancellationToken);
                }

                throw Interrupt(schedule, startStep, cancellationToken);
            }

            if (State.MicroBatch >= MicroBatchesPerEpoch)
            {
                State.DataEpoch++;
                State.MicroBatch = 0;
                continue;
            }

            var microBatches = _batches.NextStep(Sampler, State.DataEpoch, State.MicroBatch);
            int step = State.GlobalStep;
            TrainStep(microBatches, schedule.LearningRate(step), step + 1, device);
            State.GlobalStep = step + 1;
            State.MicroBatch += microBatches.Count;
            State.Epoch = (double)State.GlobalStep / StepsPerEpoch;
            _objective.OptimizerStepCompleted(State.GlobalStep);
            bool saveStep = State.GlobalStep % Options.Checkpointing.SaveSteps == 0;
            if (saveStep)
            {
                SnapshotObjectiveScalars();
            }

            StepCompleted?.Invoke(State.GlobalStep, totalSteps);

            bool last = State.GlobalStep == totalSteps;
            if (State.GlobalStep % Options.Logging.LoggingSteps == 0 || last)
            {
                // As transformers: the logged learning_rate is the one the next step will use.
                lastLog = FlushTrainingLog(schedule.LearningRate(State.GlobalStep), window.Elapsed.TotalSeconds);
                window.Restart();
            }

            bool epochEnd = State.MicroBatch >= MicroBatchesPerEpoch;
            bool evaluate = _eval is not null && (Options.Logging.EvalStrategy switch
            {
                EvalStrategy.Steps => State.GlobalStep % Options.Logging.EffectiveEvalSteps == 0,
                EvalStrategy.Epoch => epochEnd,
                _ => false,
            });
            if (evaluate)
            {
                AppendLog(Evaluate());
                window.Restart();
            }

            if (saveStep && !last)
            {
                _accounting!.ThrowIfNonFinite();
                SaveCheckpoint(schedule);
            }
        }

        _accounting!.ThrowIfNonFinite();
        double meanLoss = _accounting.MeanLoss(State.GlobalStep - startStep);

        if (State.GlobalStep % Options.Checkpointing.SaveSteps == 0 && State.GlobalStep > startStep)
        {
            SaveCheckpoint(schedule);
        }

        if (WritesFiles)
        {
            SaveModel(Options.Checkpointing.OutputDir);
            Checkpointer.WriteTrainerState(Path.Combine(Options.Checkpointing.OutputDir, Checkpointer.TrainerStateFile), State);
        }

        return new TrainOutput(State.GlobalStep, meanLoss, wall.Elapsed.TotalSeconds, lastLog);
    }

    private void TrainStep(IReadOnlyList<int[]> microBatches, double lr, int stepNumber, Device device)
    {
        using var scope = NewDisposeScope();

        // The mean over every loss unit of the optimizer step (pairs, completion tokens): gradient accumulation
        // equals the big batch exactly, also when the last micro-batch is smaller. Data parallel: the units of every
        // rank's share of the step, so the summed gradients are those of the global batch (uneven SFT token counts too).
        double units = microBatches.Sum(_train.LossUnits);
        if (Distributed)
        {
            Span<double> global = [units];
            ProcessGroup.SumInPlace(global);
            units = global[0];
        }

        var stepLoss = zeros(1, device: device).squeeze();
        using var stepStats = new NamedStatistics();
        int examples = 0;
        long tokens = 0;
        foreach (var idx in microBatches)
        {
            // One scope per micro-batch: its logits are released before the next forward.
            using var microScope = NewDisposeScope();
            using var batch = _train.Collate(idx, device);
            var output = _objective.Compute(batch, DataSplit.Train);
            using var stats = output.Statistics;
            var scaled = output.LossSum / units;
            scaled.backward();
            using (no_grad())
            {
                stepStats.Add(stats);
                examples += idx.Length;
                tokens += batch.TokenCount;
                stepLoss.add_(scaled.detach());
            }
        }

        GradientSynchronizer.Synchronize([.. _trainable.Select(p => p.Param)]);
        using (no_grad())
        {
            if (Distributed)
            {
                // The global step loss (each rank's part is already over the global units), examples and tokens, and
                // whether any rank was asked to stop: one small all-reduce, so every rank decides alike below.
                Span<double> step = [stepLoss.item<float>(), examples, tokens, _stopRequested ? 1 : 0];
                ProcessGroup.SumInPlace(step);
                stepLoss.fill_(step[0]);
                examples = (int)step[1];
                tokens = (long)step[2];
                _peerStopRequested = step[3] > 0;
            }

            State.NumTokens += tokens;
            var norm = GradientClipping.ClipGradNorm(_trainable.Select(p => p.Param), Options.Optimizer.MaxGradNorm, device);

            // The non-finite guard (one host read per step): a NaN/inf loss or gradient never reaches the weights.
            if (_guard!.Check(stepLoss, norm, stepNumber, microBatches) is { } skipped)
            {
                _optimizer!.Optimizer.zero_grad();
                StepSkipped?.Invoke(skipped);
                return;
            }

            _accounting!.AddMicroBatch(stepStats, examples, tokens);
            _accounting!.EndStep(stepLoss, norm, stepNumber);
        }

        var optimizer = _optimizer!.Optimizer;
        foreach (var g in optimizer.ParamGroups)
        {
            g.LearningRate = lr;
        }

        AdamWStepper.Step(optimizer);
        optimizer.zero_grad();
    }

    private Dictionary<string, double> FlushTrainingLog(double nextLr, double windowSeconds)
    {
        _accounting!.SumWindowAcrossRanks(ProcessGroup);
        // One device→host copy per logging step: the statistics, the last grad norm, the first bad step and the
        // window's step losses.
        var m = _accounting!.Flush(_objective.TrainingLossMetric, _objective.ExamplesPerSecondMetric, windowSeconds, m =>
        {
            m[MetricNames.LearningRate] = nextLr;
            m[MetricNames.Epoch] = State.Epoch;
            m[MetricNames.NumTokens] = State.NumTokens;
            if (_guard!.Skipped > 0)
            {
                m[MetricNames.SkippedSteps] = _guard.Skipped;
            }
        });
        AppendLog(m);
        return m;
    }

    private void AppendLog(IReadOnlyDictionary<string, double> metrics)
    {
        var entry = new TrainerLogEntry(State.GlobalStep, metrics);
        State.LogHistory.Add(entry);
        _activeSink?.Log(entry.Step, entry.Metrics);
        foreach (var sink in AdditionalSinks)
        {
            sink.Log(entry.Step, entry.Metrics);
        }

        Logged?.Invoke(entry);
    }

    private void SetTrainMode()
    {
        // eval() only switches dropout off; gradients still flow.
        if (Options.DisableDropout)
        {
            Model.Module.eval();
        }
        else
        {
            Model.Module.train();
        }
    }

}
