using System.Diagnostics;
using DpoSharp.Data;
using DpoSharp.Losses;
using DpoSharp.Models;
using DpoSharp.Tokenization;
using DpoSharp.Training.Metrics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Training;

/// <summary>One logged record: the optimizer step and TRL-named metrics (<c>loss</c>, <c>rewards/margins</c>, …).</summary>
public sealed record TrainerLogEntry(int Step, IReadOnlyDictionary<string, double> Metrics);

/// <summary>What <see cref="DpoTrainer.Train"/> returns.</summary>
/// <param name="GlobalStep">Optimizer steps taken in total (including those before a resume).</param>
/// <param name="TrainingLoss">Mean loss over the steps this call ran.</param>
/// <param name="Seconds">Wall time of this call.</param>
/// <param name="LastLog">The last logged training metrics.</param>
public sealed record TrainOutput(int GlobalStep, double TrainingLoss, double Seconds, IReadOnlyDictionary<string, double> LastLog);

/// <summary>
/// Direct Preference Optimization trainer (TRL's <c>DPOTrainer</c>): one policy forward over chosen+rejected per
/// micro-batch, reference log-probs from a frozen copy / precomputed cache / nothing, a pairwise loss, gradient
/// accumulation that equals the large batch exactly, grad-norm clipping, AdamW (no weight decay on 1-D parameters),
/// a warmup + decay schedule, evaluation, TRL-named metrics, atomic checkpoints and exact resume.
/// </summary>
/// <example>
/// <code>
/// using var trainer = new DpoTrainer(model, refModel: null, args, trainPairs, padTokenId);
/// trainer.Train();
/// </code>
/// </example>
public sealed partial class DpoTrainer : IDisposable
{
    /// <summary>Name of the metrics file written in the output directory (one JSON object per logged step).</summary>
    public const string MetricsFileName = JsonlMetricSink.FileName;

    // Device accumulator slots (sums over pairs).
    private const int SlotLoss = 0;
    private const int SlotChosenReward = 1;
    private const int SlotRejectedReward = 2;
    private const int SlotAccuracy = 3;
    private const int SlotMargin = 4;
    private const int SlotLogpChosen = 5;
    private const int SlotLogpRejected = 6;
    private const int SlotLogitChosen = 7;
    private const int SlotLogitRejected = 8;
    private const int SlotNll = 9;
    private const int SlotCount = 10;

    private readonly IReadOnlyList<TokenizedPair> _train;
    private readonly IReadOnlyList<TokenizedPair>? _eval;
    private readonly IPreferenceLoss _loss;
    private readonly List<Parameter> _trainable;
    private readonly List<string> _trainableNames;
    private readonly PreferenceCollator _collator;
    private BatchSampler? _sampler;
    private IReadOnlyList<int[]>? _epochBatches;
    private int _epochBatchesEpoch = -1;
    private bool _sawNll;
    private IMetricSink? _activeSink;
    private IReferenceLogProbs? _trainRef;
    private IReferenceLogProbs? _evalRef;
    private ICausalLM? _ownedRefModel;
    private ICausalLM? _refModel;
    private AdamW? _optimizer;
    private Tensor? _metricAcc;     // (SlotCount) sums since the last log
    private Tensor? _gradNorm;      // () last step's total norm
    private Tensor? _lossSinceStart; // () sum of step losses in this Train call
    private Tensor? _badStep;       // () first step with a non-finite loss/grad norm, -1 if none
    private int _windowPairs;
    private long _windowTokens;
    private readonly bool _ownsLoss;
    private bool _disposed;

    /// <summary>
    /// Creates a trainer over tokenized pairs.
    /// </summary>
    /// <param name="model">The policy; trained in place.</param>
    /// <param name="refModel">The reference model (frozen here; not disposed by the trainer). Null: a frozen copy of
    /// <paramref name="model"/> made before training starts, unless <see cref="DpoOptions.ReferenceFree"/> or
    /// <see cref="DpoOptions.PrecomputeRefLogProbs"/> make a model unnecessary.</param>
    /// <param name="args">Options; validated here.</param>
    /// <param name="trainDataset">Tokenized training pairs.</param>
    /// <param name="padTokenId">Pad id used when collating.</param>
    /// <param name="evalDataset">Optional evaluation pairs (evaluated as <see cref="TrainingOptions.EvalStrategy"/> says).</param>
    /// <param name="loss">The preference loss; null: the one <see cref="DpoOptions.LossType"/> names.</param>
    public DpoTrainer(
        ICausalLM model,
        ICausalLM? refModel,
        DpoOptions args,
        IReadOnlyList<TokenizedPair> trainDataset,
        int padTokenId,
        IReadOnlyList<TokenizedPair>? evalDataset = null,
        IPreferenceLoss? loss = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(trainDataset);
        args.Validate();
        if (trainDataset.Count == 0)
        {
            throw new DpoSharpException("the training dataset is empty: give at least one preference pair.");
        }

        // Ids outside the embedding table make libtorch abort the process: report the pair instead.
        int vocab = model.Config.VocabSize;
        if (vocab > 0)
        {
            if (padTokenId < 0 || padTokenId >= vocab)
            {
                throw new DpoSharpException($"pad token id {padTokenId} is outside the model's vocabulary (0..{vocab - 1}); does the tokenizer belong to this model?");
            }

            foreach (var (name, data) in new[] { ("training", trainDataset), ("evaluation", evalDataset ?? []) })
            {
                for (int i = 0; i < data.Count; i++)
                {
                    foreach (var (part, ids) in new[] { ("prompt", data[i].PromptIds), ("chosen", data[i].ChosenIds), ("rejected", data[i].RejectedIds) })
                    {
                        foreach (var id in ids)
                        {
                            if (id < 0 || id >= vocab)
                            {
                                throw new DpoSharpException($"{name} pair {i}: {part} token id {id} is outside the model's vocabulary (0..{vocab - 1}); " +
                                    "was the data tokenized for another model, or does the tokenizer not belong to this model?");
                            }
                        }
                    }
                }
            }
        }

        if (model is CausalLMBase { MaxSequenceLength: int maxLength })
        {
            foreach (var (name, data) in new[] { ("training", trainDataset), ("evaluation", evalDataset ?? []) })
            {
                int multiple = args.PadToMultipleOf ?? 1;
                int longest = data.Count == 0 ? 0 : data.Max(p => p.PromptIds.Length + Math.Max(p.ChosenIds.Length, p.RejectedIds.Length));
                int padded = (longest + multiple - 1) / multiple * multiple;
                if (padded > maxLength)
                {
                    throw new DpoSharpException($"the longest {name} pair has {longest} tokens{(padded != longest ? $" ({padded} padded to a multiple of {multiple})" : "")}, more than this " +
                        $"{model.Config.ModelType} model's {maxLength} positions (n_positions in config.json). Set max_length to {maxLength} or less (and max_prompt_length below it).");
                }
            }
        }

        Model = model;
        Args = args;
        _train = trainDataset;
        _eval = evalDataset is { Count: > 0 } ? evalDataset : null;
        _collator = new PreferenceCollator(padTokenId, args.PadToMultipleOf);
        _ownsLoss = loss is null;
        _loss = loss ?? args.CreateLoss();

        _trainable = [];
        _trainableNames = [];
        foreach (var (name, p) in model.Module.named_parameters())
        {
            if (p.requires_grad)
            {
                _trainable.Add(p);
                _trainableNames.Add(name);
            }
        }

        if (_trainable.Count == 0)
        {
            throw new DpoSharpException("the model has no trainable parameters (requires_grad is false everywhere).");
        }

        if (refModel is not null && ReferenceEquals(refModel, model))
        {
            throw new ArgumentException("the reference model must not be the policy itself; pass null to use a frozen copy.", nameof(refModel));
        }

        if (!args.ReferenceFree && refModel is not null)
        {
            _refModel = refModel;
            FrozenModelReference.Freeze(_refModel);
        }
    }

    /// <summary>
    /// Creates a trainer over raw preference examples, tokenized here with <paramref name="processingClass"/> as
    /// TRL does (chat templates for conversational data; <see cref="DpoOptions.MaxLength"/>,
    /// <see cref="DpoOptions.MaxPromptLength"/>, <see cref="DpoOptions.MaxCompletionLength"/> and
    /// <see cref="DpoOptions.TruncationMode"/>). Pairs that cannot keep a completion token are dropped
    /// (see <see cref="TrainTokenization"/>).
    /// </summary>
    /// <param name="model">The policy; trained in place.</param>
    /// <param name="refModel">The reference model, or null (see the other constructor).</param>
    /// <param name="args">Options; validated here.</param>
    /// <param name="trainDataset">Training examples (e.g. from <see cref="PreferenceDatasetLoader.Load"/>).</param>
    /// <param name="processingClass">The model's tokenizer; its pad id (else EOS) pads batches.</param>
    /// <param name="evalDataset">Optional evaluation examples.</param>
    /// <param name="loss">The preference loss; null: the one <see cref="DpoOptions.LossType"/> names.</param>
    public DpoTrainer(
        ICausalLM model,
        ICausalLM? refModel,
        DpoOptions args,
        PreferenceDataset trainDataset,
        ITokenizer processingClass,
        PreferenceDataset? evalDataset = null,
        IPreferenceLoss? loss = null)
        : this(model, refModel, args, PreparedData.Create(args, processingClass, trainDataset, evalDataset), loss)
    {
    }

    private DpoTrainer(ICausalLM model, ICausalLM? refModel, DpoOptions args, PreparedData data, IPreferenceLoss? loss)
        : this(model, refModel, args, data.Train.Pairs, data.PadTokenId, data.Eval?.Pairs, loss)
    {
        TrainTokenization = data.Train;
        EvalTokenization = data.Eval;
        TokenizationKey = data.Key;
    }

    /// <summary>The tokenization of the training examples (kept/dropped counts, truncations) when built from raw examples.</summary>
    public TokenizationResult? TrainTokenization { get; }

    /// <summary>The tokenization of the evaluation examples when built from raw examples.</summary>
    public TokenizationResult? EvalTokenization { get; }

    /// <summary>The policy being trained.</summary>
    public ICausalLM Model { get; }

    /// <summary>The options.</summary>
    public DpoOptions Args { get; }

    /// <summary>The loss in use.</summary>
    public IPreferenceLoss Loss => _loss;

    /// <summary>Step, epoch, data position and log history; saved in every checkpoint as <c>trainer_state.json</c>.</summary>
    public DpoTrainerState State { get; private set; } = new();

    /// <summary>Runs between backward and optimizer step (data-parallel all-reduce). Default: nothing.</summary>
    public IGradientSynchronizer GradientSynchronizer { get; set; } = NoGradientSynchronizer.Instance;

    /// <summary>This process's rank: it trains on every <see cref="WorldSize"/>-th pair of each epoch's order
    /// starting at <see cref="Rank"/>; only rank 0 writes files.</summary>
    public int Rank { get; set; }

    /// <summary>Number of data-parallel processes.</summary>
    public int WorldSize { get; set; } = 1;

    /// <summary>
    /// A custom source of reference log-probs for training and evaluation (e.g. the policy with its LoRA adapters
    /// disabled), used instead of the one the options select. Not disposed by the trainer. Null: frozen model,
    /// precomputed or none, from <see cref="DpoOptions"/>.
    /// </summary>
    public IReferenceLogProbs? ReferenceLogProbs { get; set; }

    /// <summary>Directory of the precomputed reference log-prob cache (<c>ref_logps-&lt;hash&gt;.safetensors</c>);
    /// null: <see cref="TrainingOptions.OutputDir"/>.</summary>
    public string? ReferenceCacheDir { get; set; }

    /// <summary>Tokenization settings folded into the precomputed-reference cache key (chat template, lengths, …).</summary>
    public string TokenizationKey { get; set; } = "";

    /// <summary>A directory whose tokenizer files (tokenizer.json, tokenizer_config.json, …) are copied next to
    /// every saved model, as TRL saves its processing class. Null: none.</summary>
    public string? TokenizerFilesSource { get; set; }

    /// <summary>
    /// Where logged metrics go (rank 0). Null: the file sinks <see cref="TrainingOptions.ReportTo"/> selects
    /// (metrics.jsonl, TensorBoard events, PNG charts at the end) in <see cref="TrainingOptions.OutputDir"/>, created by
    /// <see cref="Train"/> (resume-aware: metrics.jsonl keeps the lines up to the checkpoint).
    /// </summary>
    public IMetricSink? MetricSink { get; set; }

    /// <summary>Raised on every logging step (training and <c>eval_</c> metrics), on every rank.</summary>
    public event Action<TrainerLogEntry>? Logged;

    /// <summary>Raised after every optimizer step with the global step and the total steps (for progress bars).</summary>
    public event Action<int, int>? StepCompleted;

    /// <summary>The reference provider of the training data (built by <see cref="Train"/>): frozen model, precomputed or none.</summary>
    public IReferenceLogProbs? TrainReference => _trainRef;

    /// <summary>Number of optimizer steps the run will take in total.</summary>
    public int TotalSteps => ComputeTotalSteps();

    /// <summary>Micro-batches of this rank per epoch.</summary>
    public int MicroBatchesPerEpoch => Sampler.BatchesPerEpoch;

    /// <summary>The batch sampler: seeded random batches, or length-grouped ones with <see cref="TrainingOptions.GroupByLength"/>;
    /// sharded by <see cref="Rank"/> / <see cref="WorldSize"/>.</summary>
    public BatchSampler Sampler
    {
        get
        {
            if (_sampler is null || _sampler.Rank != Rank || _sampler.WorldSize != WorldSize)
            {
                ulong seed = (ulong)Args.Seed;
                int bs = Args.PerDeviceTrainBatchSize;
                _sampler = Args.GroupByLength
                    ? LengthGroupedSampler.For(_train, bs, seed, worldSize: WorldSize, rank: Rank)
                    : new RandomBatchSampler(_train.Count, bs, seed, worldSize: WorldSize, rank: Rank);
                _epochBatches = null;
                _epochBatchesEpoch = -1;
            }

            return _sampler;
        }
    }

    /// <summary>Training pairs (after tokenization drops), before rank sharding.</summary>
    internal int TrainPairCount => _train.Count;

    /// <summary>Optimizer steps per epoch.</summary>
    public int StepsPerEpoch => (MicroBatchesPerEpoch + Args.GradientAccumulationSteps - 1) / Args.GradientAccumulationSteps;

    /// <summary>
    /// Trains until <see cref="TrainingOptions.MaxSteps"/> or <see cref="TrainingOptions.NumTrainEpochs"/>, logging, evaluating
    /// and checkpointing as configured, then saves the final model in <see cref="TrainingOptions.OutputDir"/>.
    /// </summary>
    /// <param name="resumeFromCheckpoint">A checkpoint directory to continue from (see <see cref="FindLatestCheckpoint"/>).</param>
    /// <param name="cancellationToken">Stops after the current step (no checkpoint is written for the partial run).</param>
    /// <exception cref="DpoSharpException">The loss or gradient norm became NaN/inf (the message names the step).</exception>
    public TrainOutput Train(string? resumeFromCheckpoint = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var wall = Stopwatch.StartNew();
        var device = Model.Device;
        int totalSteps = TotalSteps;
        var schedule = LrSchedule.FromOptions(Args, totalSteps);
        resumeFromCheckpoint ??= ResolveResumeCheckpoint();

        // The reference providers are built before any checkpoint weights are loaded into the policy: the reference
        // is the starting model.
        BuildReferences(resumeFromCheckpoint);

        // Seeds the torch generator (dropout); the data order derives from the seed and the epoch. TorchSharp 0.107 has
        // no use_deterministic_algorithms, but CPU kernels are deterministic for a fixed thread count.
        State = new DpoTrainerState
        {
            Seed = Args.Seed,
            TotalSteps = totalSteps,
            PerDeviceTrainBatchSize = Args.PerDeviceTrainBatchSize,
            GradientAccumulationSteps = Args.GradientAccumulationSteps,
            NumTrainPairs = TrainPairCount,
            WorldSize = WorldSize,
        };
        torch.random.manual_seed(Args.Seed);
        _optimizer?.Dispose();
        _optimizer = CreateOptimizer();
        ResetAccumulators(device);

        if (resumeFromCheckpoint is not null)
        {
            LoadCheckpoint(resumeFromCheckpoint);
        }

        IMetricSink? ownedSink = null;
        if (WritesFiles)
        {
            Directory.CreateDirectory(Args.OutputDir);
            if (MetricSink is null)
            {
                ownedSink = CompositeMetricSink.FromOptions(Args, resumeFromCheckpoint is null ? null : State.GlobalStep);
            }
        }

        _activeSink = Rank == 0 ? MetricSink ?? ownedSink : null;
        bool wasTraining = Model.Module.training;
        try
        {
            var output = TrainLoop(totalSteps, schedule, device, wall, cancellationToken);
            _activeSink?.Close();
            return output;
        }
        finally
        {
            _activeSink = null;
            ownedSink?.Dispose();
            Model.Module.train(wasTraining);
        }
    }

    private TrainOutput TrainLoop(int totalSteps, LrSchedule schedule, Device device, Stopwatch wall, CancellationToken cancellationToken)
    {
        int startStep = State.GlobalStep;
        var lastLog = (IReadOnlyDictionary<string, double>)new Dictionary<string, double>();
        var window = Stopwatch.StartNew();
        SetTrainMode();
        while (State.GlobalStep < totalSteps)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (State.MicroBatch >= MicroBatchesPerEpoch)
            {
                State.DataEpoch++;
                State.MicroBatch = 0;
                continue;
            }

            var microBatches = NextStepBatches();
            int step = State.GlobalStep;
            TrainStep(microBatches, schedule.LearningRate(step), step + 1, device);
            State.GlobalStep = step + 1;
            State.MicroBatch += microBatches.Count;
            State.Epoch = (double)State.GlobalStep / StepsPerEpoch;
            SaveLossState();
            StepCompleted?.Invoke(State.GlobalStep, totalSteps);

            bool last = State.GlobalStep == totalSteps;
            if (State.GlobalStep % Args.LoggingSteps == 0 || last)
            {
                // As transformers: the logged learning_rate is the one the next step will use.
                lastLog = FlushTrainingLog(schedule.LearningRate(State.GlobalStep), window.Elapsed.TotalSeconds);
                window.Restart();
            }

            bool epochEnd = State.MicroBatch >= MicroBatchesPerEpoch;
            bool evaluate = _eval is not null && (Args.EvalStrategy switch
            {
                "steps" => State.GlobalStep % Args.EffectiveEvalSteps == 0,
                "epoch" => epochEnd,
                _ => false,
            });
            if (evaluate)
            {
                AppendLog(Evaluate());
                window.Restart();
            }

            if (State.GlobalStep % Args.SaveSteps == 0 && !last)
            {
                ThrowIfNonFinite();
                SaveCheckpoint();
            }
        }

        ThrowIfNonFinite();
        double meanLoss;
        using (NewDisposeScope())
        {
            meanLoss = State.GlobalStep > startStep ? _lossSinceStart!.item<float>() / (State.GlobalStep - startStep) : double.NaN;
        }

        if (State.GlobalStep % Args.SaveSteps == 0 && State.GlobalStep > startStep)
        {
            SaveCheckpoint();
        }

        if (WritesFiles)
        {
            SaveModel(Args.OutputDir);
            TrainerCheckpoint.WriteTrainerState(Path.Combine(Args.OutputDir, TrainerCheckpoint.TrainerStateFile), State);
        }

        return new TrainOutput(State.GlobalStep, meanLoss, wall.Elapsed.TotalSeconds, lastLog);
    }

    /// <summary>
    /// Evaluates on the eval dataset (no gradients, dropout off) and returns <c>eval_</c>-prefixed metrics
    /// (<c>eval_loss</c>, <c>eval_rewards/accuracies</c>, …). Empty when there is no eval dataset.
    /// </summary>
    public IReadOnlyDictionary<string, double> Evaluate()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_eval is null)
        {
            return new Dictionary<string, double>();
        }

        _evalRef ??= BuildReference(_eval, resumeCheckpoint: null, cacheName: "eval");
        var device = Model.Device;
        bool wasTraining = Model.Module.training;
        Model.Module.eval();
        var sw = Stopwatch.StartNew();
        using var acc = zeros(SlotCount, device: device);
        long tokens = 0;
        try
        {
            using var _ = no_grad();
            for (int start = 0; start < _eval.Count; start += Args.PerDeviceEvalBatchSize)
            {
                using var scope = NewDisposeScope();
                var idx = Enumerable.Range(start, Math.Min(Args.PerDeviceEvalBatchSize, _eval.Count - start)).ToArray();
                using var batch = _collator.Collate(_eval, idx, device);
                tokens += batch.TokenCount;
                var (_, stats) = ForwardLoss(batch, _evalRef, device);
                acc.add_(stats);
            }
        }
        finally
        {
            Model.Module.train(wasTraining);
        }

        float[] values;
        using (NewDisposeScope())
        {
            values = acc.cpu().data<float>().ToArray();
        }

        var m = MetricsFromSums(values, _eval.Count, "eval_");
        double secs = Math.Max(sw.Elapsed.TotalSeconds, 1e-9);
        m["eval_runtime"] = secs;
        m["eval_pairs_per_second"] = _eval.Count / secs;
        m["eval_tokens_per_second"] = tokens / secs;
        m["epoch"] = State.Epoch;
        return m;
    }

    /// <summary>
    /// Saves the policy as a Hugging Face model directory (<c>config.json</c> + safetensors, tokenizer files from
    /// <see cref="TokenizerFilesSource"/>).
    /// </summary>
    public void SaveModel(string directory)
    {
        TrainerCheckpoint.SaveModelDirectory(Model, directory, TokenizerFilesSource);
    }

    /// <summary>The newest complete <c>checkpoint-&lt;step&gt;</c> directory in <paramref name="outputDir"/>, or null.</summary>
    public static string? FindLatestCheckpoint(string outputDir) => TrainerCheckpoint.FindLatest(outputDir);

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _optimizer?.Dispose();
        _metricAcc?.Dispose();
        _gradNorm?.Dispose();
        _lossSinceStart?.Dispose();
        _badStep?.Dispose();
        DisposeReferences();
        _ownedRefModel?.Dispose();
        if (_ownsLoss)
        {
            (_loss as IDisposable)?.Dispose();
        }
    }

    private void TrainStep(IReadOnlyList<int[]> microBatches, double lr, int stepNumber, Device device)
    {
        using var scope = NewDisposeScope();
        int totalPairs = microBatches.Sum(b => b.Length);
        var stepLoss = zeros(1, device: device).squeeze();
        foreach (var idx in microBatches)
        {
            // One scope per micro-batch: its logits are released before the next forward.
            using var microScope = NewDisposeScope();
            using var batch = _collator.Collate(_train, idx, device);
            var (lossSum, stats) = ForwardLoss(batch, _trainRef!, device);

            // Mean over every pair of the optimizer step: gradient accumulation equals the big batch exactly, also
            // when the last micro-batch is smaller.
            var scaled = lossSum / totalPairs;
            scaled.backward();
            using (no_grad())
            {
                _metricAcc!.add_(stats);
                stepLoss.add_(scaled.detach());
            }

            _windowPairs += idx.Length;
            _windowTokens += batch.TokenCount;
            State.NumTokens += batch.TokenCount;
        }

        GradientSynchronizer.Synchronize(_trainable);
        using (no_grad())
        {
            var norm = ClipGradNorm(Args.MaxGradNorm);
            _gradNorm!.copy_(norm);
            var bad = stepLoss.isfinite().logical_and(norm.isfinite()).logical_not().logical_and(_badStep!.lt(0));
            _badStep.copy_(where(bad, tensor((long)stepNumber, device: device), _badStep));
            _lossSinceStart!.add_(stepLoss);
        }

        foreach (var g in _optimizer!.ParamGroups)
        {
            g.LearningRate = lr;
        }

        AdamWStepper.Step(_optimizer);
        _optimizer.zero_grad();
    }

    /// <summary>Policy forward + reference + loss for one batch; returns the summed per-pair loss and the stats vector.</summary>
    private (Tensor LossSum, Tensor Stats) ForwardLoss(PreferenceBatch given, IReferenceLogProbs reference, Device device)
    {
        var at = given.InputIds.device;
        var batch = at.type == device.type && at.index == device.index ? given : given.To(device);
        int p = batch.PairCount;

        // Reference first (no grad, eval mode, no random draws): its transient activations and logits are freed
        // before the policy's forward builds the autograd graph, so the two peaks do not add up.
        var refLogps = reference.Compute(batch, device);
        var logits = Model.Forward(batch.InputIds, batch.AttentionMask, batch.PositionIds);   // (2P, T, V)
        var lp = SequenceLogProbs.Compute(logits, batch.InputIds, batch.CompletionMask);
        var input = new PreferenceLossInput(
            lp.Sums[..p],
            lp.Sums[p..],
            refLogps?.Chosen,
            refLogps?.Rejected,
            lp.TokenCounts[..p],
            lp.TokenCounts[p..],
            Args.Beta)
        {
            PairWeights = Args.UseWeighting ? WpoWeights.Compute(logits, batch.InputIds, batch.CompletionMask) : null,
        };
        var output = _loss.Compute(input);
        var lossSum = output.Losses.sum();
        Tensor stats;
        using (no_grad())
        {
            var cr = output.ChosenRewards.detach();
            var rr = output.RejectedRewards.detach();
            var chosenLogps = lp.Sums[..p].detach();

            // nll_loss is a batch mean: weight it by the pair count so the window mean is pair-weighted.
            var nll = output.NllLoss is null ? zeros(1, device: device).squeeze() : output.NllLoss.detach().to(ScalarType.Float32) * p;
            _sawNll |= output.NllLoss is not null;
            stats = stack(
            [
                lossSum.detach(),
                cr.sum(),
                rr.sum(),
                cr.gt(rr).to(ScalarType.Float32).sum(),
                (cr - rr).sum(),
                chosenLogps.sum(),
                lp.Sums[p..].detach().sum(),
                lp.MeanLogits[..p].sum(),
                lp.MeanLogits[p..].sum(),
                nll,
            ]).to(ScalarType.Float32);
        }

        if (!ReferenceEquals(batch, given))
        {
            batch.Dispose();
        }

        return (lossSum, stats);
    }

    private Tensor ClipGradNorm(double maxNorm)
    {
        // As torch.nn.utils.clip_grad_norm_: the 2-norm of the per-parameter 2-norms; scale by max/(norm+1e-6) when above.
        var grads = _trainable.Select(p => p.grad).Where(g => g is not null).Select(g => g!).ToList();
        if (grads.Count == 0)
        {
            return zeros(1, device: Model.Device).squeeze();
        }

        var total = stack(grads.Select(g => linalg.vector_norm(g.to(ScalarType.Float32))).ToArray()).norm();
        if (maxNorm > 0)
        {
            var coef = (maxNorm / (total + 1e-6)).clamp_max(1.0);
            foreach (var g in grads)
            {
                g.mul_(coef.to(g.dtype));
            }
        }

        return total;
    }

    private Dictionary<string, double> MetricsFromSums(float[] s, int pairs, string prefix)
    {
        double n = Math.Max(1, pairs);
        var m = new Dictionary<string, double>
        {
            [prefix + "loss"] = s[SlotLoss] / n,
            [prefix + "rewards/chosen"] = s[SlotChosenReward] / n,
            [prefix + "rewards/rejected"] = s[SlotRejectedReward] / n,
            [prefix + "rewards/accuracies"] = s[SlotAccuracy] / n,
            [prefix + "rewards/margins"] = s[SlotMargin] / n,
            [prefix + "logps/chosen"] = s[SlotLogpChosen] / n,
            [prefix + "logps/rejected"] = s[SlotLogpRejected] / n,
            [prefix + "logits/chosen"] = s[SlotLogitChosen] / n,
            [prefix + "logits/rejected"] = s[SlotLogitRejected] / n,
        };
        if (ReportsNll)
        {
            m[prefix + "nll_loss"] = s[SlotNll] / n;
        }

        return m;
    }

    private bool ReportsNll => _sawNll;

    private Dictionary<string, double> FlushTrainingLog(double nextLr, double windowSeconds)
    {
        using var scope = NewDisposeScope();

        // One device→host copy per logging step: the metric sums, the last grad norm and the first bad step.
        var sums = cat([_metricAcc!, _gradNorm!.unsqueeze(0), _badStep!.to(ScalarType.Float32).unsqueeze(0)]).cpu().data<float>().ToArray();
        ThrowIfNonFinite((long)sums[SlotCount + 1]);
        var m = MetricsFromSums(sums, _windowPairs, "");
        m["grad_norm"] = sums[SlotCount];
        m["learning_rate"] = nextLr;
        m["epoch"] = State.Epoch;
        m["num_tokens"] = State.NumTokens;
        double secs = Math.Max(windowSeconds, 1e-9);
        m["pairs_per_second"] = _windowPairs / secs;
        m["tokens_per_second"] = _windowTokens / secs;
        _metricAcc!.zero_();
        _windowPairs = 0;
        _windowTokens = 0;
        AppendLog(m);
        return m;
    }

    private bool WritesFiles => Rank == 0 && Args.OutputDir.Length > 0;

    private string? ResolveResumeCheckpoint()
    {
        if (Args.ResumeFromCheckpoint is { } dir)
        {
            return dir;
        }

        if (!Args.Resume)
        {
            return null;
        }

        return FindLatestCheckpoint(Args.OutputDir)
            ?? throw new DpoSharpException($"resume: no complete checkpoint-<step> directory in {Path.GetFullPath(Args.OutputDir)}; train without resume first, or point resume_from_checkpoint at a checkpoint.");
    }

    private void SaveLossState()
    {
        if (_loss is IStatefulPreferenceLoss s && Args.SaveSteps > 0 && State.GlobalStep % Args.SaveSteps == 0)
        {
            State.LossState = new Dictionary<string, double>(s.SaveState());
        }
    }

    private void AppendLog(IReadOnlyDictionary<string, double> metrics)
    {
        var entry = new TrainerLogEntry(State.GlobalStep, metrics);
        State.LogHistory.Add(entry);
        _activeSink?.Log(entry.Step, entry.Metrics);
        Logged?.Invoke(entry);
    }

    private void ThrowIfNonFinite()
    {
        using var scope = NewDisposeScope();
        ThrowIfNonFinite(_badStep!.item<long>());
    }

    private static void ThrowIfNonFinite(long bad)
    {
        if (bad >= 0)
        {
            throw new DpoSharpException(
                $"the loss or gradient norm became NaN/inf at step {bad}; training stopped and no checkpoint was written after it. " +
                "Lower learning_rate, check the data for empty completions, or resume from an earlier checkpoint.");
        }
    }

    private void ResetAccumulators(Device device)
    {
        _metricAcc?.Dispose();
        _gradNorm?.Dispose();
        _lossSinceStart?.Dispose();
        _badStep?.Dispose();
        _metricAcc = zeros(SlotCount, device: device).DetachFromDisposeScope();
        _gradNorm = zeros(1, device: device).squeeze().DetachFromDisposeScope();
        _lossSinceStart = zeros(1, device: device).squeeze().DetachFromDisposeScope();
        _badStep = full(1, -1L, dtype: ScalarType.Int64, device: device).squeeze().DetachFromDisposeScope();
        _windowPairs = 0;
        _windowTokens = 0;
    }

    private void SetTrainMode()
    {
        // eval() only switches dropout off; gradients still flow.
        if (Args.DisableDropout)
        {
            Model.Module.eval();
        }
        else
        {
            Model.Module.train();
        }
    }

    private AdamW CreateOptimizer()
    {
        return OptimizerFactory.CreateAdamW(_trainable, Args);
    }

    /// <summary>Parameters in optimizer-state order (decay group, then no-decay group) with their names.</summary>
    internal IReadOnlyList<(string Name, Parameter Param)> OptimizerOrder()
    {
        var list = new List<(string, Parameter)>();
        for (int i = 0; i < _trainable.Count; i++)
        {
            if (_trainable[i].dim() >= 2)
            {
                list.Add((_trainableNames[i], _trainable[i]));
            }
        }

        for (int i = 0; i < _trainable.Count; i++)
        {
            if (_trainable[i].dim() < 2)
            {
                list.Add((_trainableNames[i], _trainable[i]));
            }
        }

        return list;
    }

    private int ComputeTotalSteps()
    {
        if (Args.MaxSteps > 0)
        {
            return Args.MaxSteps;
        }

        return Math.Max(1, (int)Math.Ceiling(Args.NumTrainEpochs * StepsPerEpoch));
    }

    private List<int[]> NextStepBatches()
    {
        if (_epochBatches is null || _epochBatchesEpoch != State.DataEpoch)
        {
            _epochBatches = Sampler.EpochBatches(State.DataEpoch);
            _epochBatchesEpoch = State.DataEpoch;
        }

        var list = new List<int[]>();
        for (int mb = State.MicroBatch; mb < _epochBatches.Count && list.Count < Args.GradientAccumulationSteps; mb++)
        {
            list.Add(_epochBatches[mb]);
        }

        return list;
    }

    private void BuildReferences(string? resumeCheckpoint)
    {
        DisposeReferences();
        _trainRef = BuildReference(_train, resumeCheckpoint, "train");
        _evalRef = _eval is null ? null : BuildReference(_eval, resumeCheckpoint, "eval");
    }

    private void DisposeReferences()
    {
        // A caller's ReferenceLogProbs is the caller's to dispose.
        if (!ReferenceEquals(_trainRef, ReferenceLogProbs))
        {
            _trainRef?.Dispose();
        }

        if (!ReferenceEquals(_evalRef, _trainRef) && !ReferenceEquals(_evalRef, ReferenceLogProbs))
        {
            _evalRef?.Dispose();
        }

        _trainRef = null;
        _evalRef = null;
    }

    private IReferenceLogProbs BuildReference(IReadOnlyList<TokenizedPair> data, string? resumeCheckpoint, string cacheName)
    {
        if (ReferenceLogProbs is { } custom)
        {
            return custom;
        }

        if (Args.ReferenceFree)
        {
            return new NoReference();
        }

        if (!Args.PrecomputeRefLogProbs)
        {
            if (_refModel is null)
            {
                // The default reference: a frozen copy of the policy, made once, before any training or checkpoint
                // loading changes it.
                _ownedRefModel = CopyModel(Model);
                _refModel = _ownedRefModel;
                FrozenModelReference.Freeze(_refModel);
            }

            return new FrozenModelReference(_refModel);
        }

        // Resuming without a reference model: the policy has moved on, so use the values the checkpoint carries.
        if (resumeCheckpoint is not null && _refModel is null)
        {
            var fromCheckpoint = TrainerCheckpoint.LoadReference(resumeCheckpoint, cacheName);
            if (fromCheckpoint is not null)
            {
                return fromCheckpoint;
            }

            throw new DpoSharpException($"{resumeCheckpoint}: the checkpoint has no ref_logps-{cacheName}.safetensors; precomputed reference log-probs cannot be recomputed from a trained policy. Pass the starting model as the reference model.");
        }

        var cacheDir = ReferenceCacheDir ?? (Args.OutputDir.Length > 0 ? Args.OutputDir : null);
        if (Rank != 0 && ReferenceCacheDir is null)
        {
            cacheDir = null;
        }

        int batch = Args.PrecomputeRefBatchSize ?? Args.PerDeviceEvalBatchSize;
        return PrecomputedReference.Create(_refModel ?? Model, data, _collator, batch, cacheDir, TokenizationKey + "|" + cacheName);
    }

    private void SaveCheckpoint()
    {
        if (!WritesFiles)
        {
            return;
        }

        TrainerCheckpoint.Save(this, Args.OutputDir, _optimizer!, State);
        if (Args.SaveTotalLimit is int limit)
        {
            TrainerCheckpoint.Rotate(Args.OutputDir, limit);
        }
    }

    private void LoadCheckpoint(string dir)
    {
        var state = TrainerCheckpoint.Load(this, dir, _optimizer!);
        State = state;
        if (_loss is IStatefulPreferenceLoss s && state.LossState.Count > 0)
        {
            s.LoadState(state.LossState);
        }
    }

    internal (IReferenceLogProbs? Train, IReferenceLogProbs? Eval) References => (_trainRef, _evalRef);

    internal void SaveModelForCheckpoint(string dir) => TrainerCheckpoint.SaveModelDirectory(Model, dir, TokenizerFilesSource);

    private static ICausalLM CopyModel(ICausalLM model) => model is CausalLMBase
        ? ModelLoader.Copy(model)
        : throw new DpoSharpException("no reference model given and this model type cannot be copied: pass a reference model (--ref-model), or set precompute_ref_log_probs or reference_free.");

    private sealed record PreparedData(TokenizationResult Train, TokenizationResult? Eval, int PadTokenId, string Key)
    {
        public static PreparedData Create(DpoOptions args, ITokenizer tokenizer, PreferenceDataset train, PreferenceDataset? eval)
        {
            ArgumentNullException.ThrowIfNull(args);
            ArgumentNullException.ThrowIfNull(tokenizer);
            ArgumentNullException.ThrowIfNull(train);
            args.Validate();
            var pairTokenizer = new PairTokenizer(tokenizer, args.ToTokenizationOptions());
            var t = Tokenize(pairTokenizer, train);
            var e = eval is null ? null : Tokenize(pairTokenizer, eval);
            int pad = tokenizer.PadTokenId ?? tokenizer.EosTokenId
                ?? throw new DpoSharpException("the tokenizer has neither a pad nor an EOS token; add pad_token to tokenizer_config.json.");
            var template = tokenizer.ChatTemplate is null ? "" : Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(tokenizer.ChatTemplate)));
            var key = string.Join(";", $"max_length={args.MaxLength}", $"max_prompt_length={args.MaxPromptLength}", $"max_completion_length={args.MaxCompletionLength}",
                $"truncation_mode={args.TruncationMode}", $"vocab={tokenizer.VocabSize}", $"pad={pad}", $"template={template}");
            return new PreparedData(t, e, pad, key);
        }

        private static TokenizationResult Tokenize(PairTokenizer tokenizer, PreferenceDataset dataset)
        {
            var result = tokenizer.Tokenize(dataset);
            if (result.Pairs.Count == 0)
            {
                throw new DpoSharpException($"{string.Join(", ", dataset.Files)}: no pair survives tokenization ({string.Join("; ", result.Stats.Dropped.Select(kv => $"{kv.Value} × {kv.Key}"))}); raise max_length or check the data.");
            }

            return result;
        }
    }
}
