using DpoSharp.Data;
using DpoSharp.Losses;
using DpoSharp.Models;
using DpoSharp.Training.Engine;
using DpoSharp.Training.Metrics;
using DpoSharp.Training.Objectives;

namespace DpoSharp.Training;

/// <summary>
/// Kahneman–Tversky optimisation trainer (TRL's <c>KTOTrainer</c>): a façade that wires a <see cref="KtoObjective"/>
/// (unpaired examples, a frozen reference, the KL reference point from mismatched rows of each batch, the <c>kto</c> or
/// <c>apo_zero_unpaired</c> loss) into the shared <see cref="TrainingLoop{TBatch}"/>, so accumulation, clipping, AdamW,
/// the schedule, evaluation, metrics, checkpoints and resume are DPO's. Its options are <see cref="DpoOptions"/> with
/// <see cref="DpoOptions.Algorithm"/> <c>kto</c>.
/// </summary>
/// <example>
/// <code>
/// var data = PreparedUnpairedData.Create(args.ToTokenizationOptions(), tokenizer, UnpairedDatasetLoader.Load("kto.jsonl"), null);
/// using var trainer = new KtoTrainer(model, refModel: null, args, data);
/// trainer.Train();
/// </code>
/// </example>
public sealed class KtoTrainer : TrainerBase<KtoBatch>
{
    private readonly KtoObjective _objective;

    /// <summary>Creates a trainer over tokenized unpaired examples.</summary>
    /// <param name="model">The policy; trained in place.</param>
    /// <param name="refModel">The reference model (frozen here; not disposed). Null: a LoRA policy's base (adapters
    /// disabled), else a frozen copy of <paramref name="model"/> made before training starts.</param>
    /// <param name="args">Options (<see cref="DpoOptions.Algorithm"/> must be <c>kto</c>); validated here.</param>
    /// <param name="trainDataset">Training examples.</param>
    /// <param name="padTokenId">Pad id used when collating.</param>
    /// <param name="evalDataset">Optional evaluation examples.</param>
    public KtoTrainer(ICausalLM model, ICausalLM? refModel, DpoOptions args, IReadOnlyList<TokenizedUnpaired> trainDataset, int padTokenId, IReadOnlyList<TokenizedUnpaired>? evalDataset = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(trainDataset);
        if (args.Algorithm != TrainingAlgorithm.Kto)
        {
            throw new DpoSharpException("KtoTrainer needs algorithm: kto in its options (DpoTrainer runs algorithm dpo).");
        }

        args.Validate();
        if (trainDataset.Count == 0)
        {
            throw new DpoSharpException("the KTO training dataset is empty: give at least one prompt/completion/label row.");
        }

        CheckAgainstModel(model, args, padTokenId, trainDataset, "training");
        CheckAgainstModel(model, args, padTokenId, evalDataset ?? [], "evaluation");
        Args = args;
        TrainableModel.Prepare(model, args);
        _objective = new KtoObjective(model, refModel, args);
        try
        {
            var collator = new KtoCollator(padTokenId, _objective.Loss.UsesKl);
            var eval = evalDataset is { Count: > 0 } ? new UnpairedBatchSource(evalDataset, collator) : null;
            Attach(new TrainingLoop<KtoBatch>(model, _objective, new UnpairedBatchSource(trainDataset, collator), eval, args));
        }
        catch
        {
            _objective.Dispose();
            throw;
        }
    }

    /// <summary>Creates a trainer over unpaired data tokenized already (<see cref="PreparedUnpairedData.Create"/>).</summary>
    /// <param name="model">The policy; trained in place.</param>
    /// <param name="refModel">The reference model, or null (see the other constructor).</param>
    /// <param name="args">Options; validated here.</param>
    /// <param name="data">The tokenized training (and evaluation) examples.</param>
    public KtoTrainer(ICausalLM model, ICausalLM? refModel, DpoOptions args, PreparedUnpairedData data)
        : this(model, refModel, args, (data ?? throw new ArgumentNullException(nameof(data))).Train, data.PadTokenId, data.Eval)
    {
    }

    /// <summary>The options.</summary>
    public DpoOptions Args { get; }

    /// <summary>The unpaired loss in use.</summary>
    public IUnpairedLoss Loss => _objective.Loss;

    /// <summary>What the reference is: <c>frozen_model</c> or <c>adapters_disabled</c>.</summary>
    public string ReferenceKind => _objective.ReferenceKind;

    /// <summary>Where logged metrics go (rank 0); null: the file sinks of <see cref="TrainingOptions.ReportTo"/>.</summary>
    public IMetricSink? MetricSink { get => Loop.MetricSink; set => Loop.MetricSink = value; }

    /// <summary>Trains (see <see cref="DpoTrainer.Train"/>), then saves the final model in output_dir.</summary>
    /// <param name="resumeFromCheckpoint">A checkpoint directory to continue from, or null.</param>
    /// <param name="cancellationToken">Stops after the current optimizer step.</param>
    public TrainOutput Train(string? resumeFromCheckpoint = null, CancellationToken cancellationToken = default) => RunLoop(resumeFromCheckpoint, cancellationToken);

    /// <inheritdoc/>
    protected override void DisposeObjective() => _objective.Dispose();

    // Token ids inside the vocabulary and rows (the KL rows too) within the model's positions.
    private static void CheckAgainstModel(ICausalLM model, DpoOptions args, int padTokenId, IReadOnlyList<TokenizedUnpaired> data, string name)
    {
        if (data.Count == 0)
        {
            return;
        }

        var asPairs = data.Select(e => new TokenizedPair(e.PromptIds, e.CompletionIds, e.CompletionIds) { SourceIndex = e.SourceIndex }).ToList();
        int vocab = model.Config.VocabSize;
        if (vocab > 0)
        {
            if (padTokenId < 0 || padTokenId >= vocab)
            {
                throw new DpoSharpException($"pad token id {padTokenId} is outside the model's vocabulary (0..{vocab - 1}); does the tokenizer belong to this model?");
            }

            PairChecks.ThrowIfOutsideVocabulary(asPairs, vocab, i => $"{name} example {data[i].SourceIndex}");
        }

        if (model is CausalLMBase { MaxSequenceLength: int maxLength })
        {
            // A KL row joins a prompt with another example's completion: bound it by the longest of each.
            var longest = new TokenizedPair(data.MaxBy(e => e.PromptIds.Length)!.PromptIds, data.MaxBy(e => e.CompletionIds.Length)!.CompletionIds, []);
            PairChecks.ThrowIfLongerThanModel([.. asPairs, longest], maxLength, args.PadToMultipleOf, name, model.Config.ModelType);
        }
    }
}
