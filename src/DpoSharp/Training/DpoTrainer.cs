using DpoSharp.Data;
using DpoSharp.Losses;
using DpoSharp.Models;
using DpoSharp.Tokenization;
using DpoSharp.Training.Engine;
using DpoSharp.Training.Metrics;
using DpoSharp.Training.Objectives;
using TorchSharp.Modules;

namespace DpoSharp.Training;

/// <summary>
/// Direct Preference Optimization trainer (TRL's <c>DPOTrainer</c>): a façade that wires a <see cref="DpoObjective"/>
/// (one policy forward over chosen+rejected per micro-batch, reference log-probs from a frozen copy / precomputed
/// cache / nothing, a pairwise loss) into the shared <see cref="TrainingLoop{TBatch}"/> (exact gradient accumulation,
/// grad-norm clipping, AdamW without weight decay on 1-D parameters, warmup + decay schedule, evaluation, TRL-named
/// metrics, atomic checkpoints and exact resume).
/// </summary>
/// <example>
/// <code>
/// using var trainer = new DpoTrainer(model, refModel: null, args, trainPairs, padTokenId);
/// trainer.Train();
/// </code>
/// </example>
public sealed class DpoTrainer : TrainerBase<PreferenceBatch>
{
    /// <summary>Name of the metrics file written in the output directory (one JSON object per logged step).</summary>
    public const string MetricsFileName = JsonlMetricSink.FileName;

    private readonly DpoObjective _objective;

    /// <summary>
    /// Creates a trainer over tokenized pairs.
    /// </summary>
    /// <param name="model">The policy; trained in place.</param>
    /// <param name="refModel">The reference model (frozen here; not disposed by the trainer). Null: a frozen copy of
    /// <paramref name="model"/> made before training starts (a LoRA model: itself with its adapters disabled), unless
    /// <see cref="DpoOptions.ReferenceFree"/> or <see cref="DpoOptions.PrecomputeRefLogProbs"/> make a model unnecessary.</param>
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
        : this(model, refModel, Validated(args), trainDataset, padTokenId, evalDataset, loss, validated: true)
    {
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
        : this(model, refModel, args, Prepare(args, processingClass, trainDataset, evalDataset), loss)
    {
    }


    /// <summary>
    /// Creates a trainer over preference data tokenized already (<see cref="PreparedPreferenceData.Create"/> with
    /// <see cref="DpoOptions.ToTokenizationOptions"/>), e.g. to check the run's memory from its longest pair before
    /// loading the model.
    /// </summary>
    /// <param name="model">The policy; trained in place.</param>
    /// <param name="refModel">The reference model, or null (see the first constructor).</param>
    /// <param name="args">Options; validated here.</param>
    /// <param name="data">The tokenized training (and evaluation) pairs.</param>
    /// <param name="loss">The preference loss; null: the one <see cref="DpoOptions.LossType"/> names.</param>
    public DpoTrainer(ICausalLM model, ICausalLM? refModel, DpoOptions args, PreparedPreferenceData data, IPreferenceLoss? loss = null)
        : this(model, refModel, Validated(args), (data ?? throw new ArgumentNullException(nameof(data))).Train.Pairs, data.PadTokenId, data.Eval?.Pairs, loss, validated: true)
    {
        TrainTokenization = data.Train;
        EvalTokenization = data.Eval;
        TokenizationKey = data.Key;
    }

    private DpoTrainer(ICausalLM model, ICausalLM? refModel, DpoOptions args, IReadOnlyList<TokenizedPair> trainDataset, int padTokenId, IReadOnlyList<TokenizedPair>? evalDataset, IPreferenceLoss? loss, bool validated)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(trainDataset);
        _ = validated;
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

            PairChecks.ThrowIfOutsideVocabulary(trainDataset, vocab, i => $"training pair {i}");
            PairChecks.ThrowIfOutsideVocabulary(evalDataset ?? [], vocab, i => $"evaluation pair {i}");
        }

        if (model is CausalLMBase { MaxSequenceLength: int maxLength })
        {
            PairChecks.ThrowIfLongerThanModel(trainDataset, maxLength, args.PadToMultipleOf, "training", model.Config.ModelType);
            PairChecks.ThrowIfLongerThanModel(evalDataset ?? [], maxLength, args.PadToMultipleOf, "evaluation", model.Config.ModelType);
        }

        Args = args;
        TrainableModel.Prepare(model, args);
        var collator = new PreferenceCollator(padTokenId, args.PadToMultipleOf)
        {
            // Rows holding several sequences need a model that takes a full attention mask.
            PrefixSharing = args.PrefixSharing && model is CausalLMBase,
            PaddingFree = args.PaddingFree,
        };
        if (args.PaddingFree && model is not CausalLMBase)
        {
            throw new DpoSharpException($"padding_free needs a model that takes a full attention mask (one loaded by ModelLoader); this {model.GetType().Name} does not. Set padding_free to false.");
        }

        _objective = new DpoObjective(model, refModel, args, trainDataset, evalDataset, collator, loss);
        try
        {
            var eval = evalDataset is { Count: > 0 } ? new PreferenceBatchSource(evalDataset, collator) : null;
            Attach(new TrainingLoop<PreferenceBatch>(model, _objective, new PreferenceBatchSource(trainDataset, collator), eval, args));
        }
        catch
        {
            _objective.Dispose();
            throw;
        }
    }

    /// <summary>The tokenization of the training examples (kept/dropped counts, truncations) when built from raw examples.</summary>
    public TokenizationResult? TrainTokenization { get; }

    /// <summary>The tokenization of the evaluation examples when built from raw examples.</summary>
    public TokenizationResult? EvalTokenization { get; }

    /// <summary>The options.</summary>
    public DpoOptions Args { get; }

    /// <summary>The loss in use.</summary>
    public IPreferenceLoss Loss => _objective.Loss;

    /// <summary>This process's rank: it trains on every <see cref="TrainerBase{TBatch}.WorldSize"/>-th pair of each epoch's order
    /// starting at <see cref="Rank"/>; only rank 0 writes files.</summary>
    public override int Rank
    {
        get => base.Rank;
        set
        {
            base.Rank = value;
            _objective.Rank = value;
        }
    }

    /// <inheritdoc/>
    public override IProcessGroup ProcessGroup
    {
        get => base.ProcessGroup;
        set
        {
            base.ProcessGroup = value;
            _objective.ProcessGroup = value;
        }
    }

    /// <summary>
    /// A custom source of reference log-probs for training and evaluation (e.g. the policy with its LoRA adapters
    /// disabled), used instead of the one the options select. Not disposed by the trainer. Null: frozen model,
    /// precomputed or none, from <see cref="DpoOptions"/>.
    /// </summary>
    public IReferenceLogProbs? ReferenceLogProbs { get => _objective.ReferenceLogProbs; set => _objective.ReferenceLogProbs = value; }

    /// <summary>Directory of the precomputed reference log-prob cache (<c>ref_logps-&lt;hash&gt;.safetensors</c>);
    /// null: <see cref="TrainingOptions.OutputDir"/>.</summary>
    public string? ReferenceCacheDir { get => _objective.ReferenceCacheDir; set => _objective.ReferenceCacheDir = value; }

    /// <summary>Tokenization settings folded into the precomputed-reference cache key (chat template, lengths, …).</summary>
    public string TokenizationKey { get => _objective.TokenizationKey; set => _objective.TokenizationKey = value; }

    /// <summary>
    /// Where logged metrics go (rank 0). Null: the file sinks <see cref="TrainingOptions.ReportTo"/> selects
    /// (metrics.jsonl, TensorBoard events; PNG charts when <see cref="TrainerBase{TBatch}.MetricSinkFactories"/> has <c>png</c>) in <see cref="TrainingOptions.OutputDir"/>, created by
    /// <see cref="Train"/> (resume-aware: metrics.jsonl keeps the lines up to the checkpoint).
    /// </summary>
    public IMetricSink? MetricSink { get => Loop.MetricSink; set => Loop.MetricSink = value; }

    /// <summary>The reference provider of the training data (built by <see cref="Train"/>): frozen model, precomputed or none.</summary>
    public IReferenceLogProbs? TrainReference => _objective.TrainReference;

    /// <summary>Parameters in optimizer-state order (decay group, then no-decay group) with their names.</summary>
    internal IReadOnlyList<(string Name, Parameter Param)> OptimizerOrder() => Loop.OptimizerOrder;

    /// <summary>
    /// Trains until <see cref="TrainingOptions.MaxSteps"/> or <see cref="TrainingOptions.NumTrainEpochs"/>, logging, evaluating
    /// and checkpointing as configured, then saves the final model in <see cref="TrainingOptions.OutputDir"/>.
    /// </summary>
    /// <param name="resumeFromCheckpoint">A checkpoint directory to continue from (see <see cref="FindLatestCheckpoint"/>).</param>
    /// <param name="cancellationToken">Stops after the current optimizer step (with <see cref="TrainerBase{TBatch}.CheckpointOnCancel"/>:
    /// checkpoints it and throws <see cref="TrainingInterruptedException"/>).</param>
    /// <exception cref="DpoSharpException">The loss or gradient norm became NaN/inf (the message names the step).</exception>
    public TrainOutput Train(string? resumeFromCheckpoint = null, CancellationToken cancellationToken = default) => RunLoop(resumeFromCheckpoint, cancellationToken);

    /// <summary>The newest complete <c>checkpoint-&lt;step&gt;</c> directory in <paramref name="outputDir"/>, or null.</summary>
    public static string? FindLatestCheckpoint(string outputDir) => Checkpointer.FindLatest(outputDir);

    /// <inheritdoc/>
    protected override void DisposeObjective() => _objective.Dispose();

    private static DpoOptions Validated(DpoOptions args)
    {
        ArgumentNullException.ThrowIfNull(args);
        args.Validate();
        return args;
    }

    private static PreparedPreferenceData Prepare(DpoOptions args, ITokenizer tokenizer, PreferenceDataset train, PreferenceDataset? eval)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(train);
        return PreparedPreferenceData.Create(Validated(args).ToTokenizationOptions(), tokenizer, train, eval);
    }
}
