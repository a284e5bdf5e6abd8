using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using DpoSharp.Charts;
using DpoSharp.Data;
using DpoSharp.Generation;
using DpoSharp.Losses;
using DpoSharp.Models;
using DpoSharp.Tokenization;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using DpoSharp.Training.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Demo;

/// <summary>Progress of one demo stage: <paramref name="Done"/> of <paramref name="Total"/> units (steps or questions).</summary>
public sealed record DemoProgress(string Stage, int Done, int Total);

/// <summary>The held-out evaluation of one model.</summary>
/// <param name="Truthfulness">Fraction of held-out questions whose greedy answer is exactly the true answer.</param>
/// <param name="FalseAnswerRate">Fraction answered with the question's false answer.</param>
/// <param name="RewardsAccuracies">eval_rewards/accuracies (DPO implicit reward of the true answer above the false one).</param>
/// <param name="RewardsMargins">eval_rewards/margins.</param>
/// <param name="KlToReference">See <see cref="DemoRunner.KlDefinition"/>.</param>
/// <param name="Answers">The greedy answer text per held-out question.</param>
public sealed record DemoEvaluation(double Truthfulness, double FalseAnswerRate, double RewardsAccuracies, double RewardsMargins, double KlToReference, IReadOnlyList<string> Answers);

/// <summary>One point of the β sweep.</summary>
public sealed record DemoSweepPoint(double Beta, double Truthfulness, double KlToReference, double RewardsAccuracies, double RewardsMargins);

/// <summary>What <see cref="DemoRunner.Run"/> returns (also written to <c>summary.json</c>).</summary>
public sealed record DemoResult(
    DemoEvaluation Before,
    DemoEvaluation After,
    IReadOnlyList<TruthfulQuestion> EvalQuestions,
    IReadOnlyList<DemoSweepPoint> Sweep,
    IReadOnlyDictionary<string, double> StageSeconds,
    double Seconds,
    long Parameters,
    string OutputDir,
    IReadOnlyList<string> Charts);

/// <summary>
/// The built-in demo (<c>dposharp train</c> with no model/dataset, alias <c>dposharp demo</c>): proves on a small CPU,
/// in minutes, that DPO makes a language model more truthful.
/// <list type="number">
/// <item><b>Data</b>: <see cref="TruthfulnessDataset"/> (number-comparison questions, one true and one plausible false
/// answer each, held-out questions on unseen number pairs); a byte-level BPE tokenizer (<see cref="DemoTokenizer"/>).</item>
/// <item><b>Base model</b>: a random small Llama, fine-tuned by <see cref="SftTrainer"/> (what <c>dposharp sft</c> runs)
/// on a corpus where every question appears once with its true and once with its false answer: it learns the
/// answer format and to name one of the two numbers, not which one is right (about 50% truthful).</item>
/// <item><b>DPO</b>: <see cref="DpoTrainer"/>, chosen = true answer, rejected = false answer, reference = the SFT model.</item>
/// <item><b>Evaluation</b> before and after on the held-out questions: greedy truthfulness, eval_rewards/accuracies,
/// eval_rewards/margins and the KL divergence from the reference (<see cref="KlDefinition"/>).</item>
/// </list>
/// Writes into <see cref="DemoOptions.OutputDir"/>: the trained model (HF layout) and its tokenizer, metrics.jsonl,
/// TensorBoard events (<c>runs/</c>), PNG charts (<c>charts/</c>), <c>summary.json</c>; the data (<c>data/</c>),
/// the random base model (<c>base/</c>) and the SFT model (<c>sft/</c>) for reproducing each stage by hand.
/// </summary>
public static class DemoRunner
{
    /// <summary>
    /// The demo computes log-probs from full logits (<c>logits_chunk_size</c> 0), not in chunks as other runs do by
    /// default: its vocabulary is a few dozen tokens, so chunking saves nothing, and the numbers the README records
    /// come from this path (chunking changes fp32 rounding, and 600 DPO steps turn that into 95.0% vs 96.0%).
    /// </summary>
    public const int FullLogits = 0;

    /// <summary>
    /// The demo runs one row per completion (<c>prefix_sharing</c> false), not the shared layout other runs use by
    /// default: its prompts are a few tokens, so sharing saves little, and the README's numbers come from this layout
    /// (sharing changes fp32 rounding, which 600 DPO steps amplify).
    /// </summary>
    public const bool PrefixSharing = false;

    /// <summary>How <c>kl_to_reference</c> is defined.</summary>
    public const string KlDefinition =
        "mean over held-out prompts of the sum, over the tokens of the policy's greedy completion (answer and EOS), of the exact per-token " +
        "KL(pi(.|prefix) || pi_ref(.|prefix)) over the whole vocabulary";

    /// <summary>Stage names reported through the progress callback.</summary>
    public const string StageData = "data", StageSft = "sft", StageEvalBefore = "eval (SFT)", StageDpo = "dpo", StageEvalAfter = "eval (DPO)";

    /// <summary>Runs the demo (see the class summary). <paramref name="progress"/> sees each stage's progress.</summary>
    public static DemoResult Run(DemoOptions options, Action<DemoProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        int previousThreads = torch.get_num_threads();
        if (options.Threads > 0)
        {
            torch.set_num_threads(options.Threads);
        }

        try
        {
            return RunCore(options, progress, cancellationToken);
        }
        finally
        {
            torch.set_num_threads(previousThreads);
        }
    }

    private static DemoResult RunCore(DemoOptions options, Action<DemoProgress>? progress, CancellationToken cancellationToken)
    {
        var device = torch.device(options.Device);
        var total = Stopwatch.StartNew();
        var stages = new Dictionary<string, double>();
        var outDir = Path.GetFullPath(options.OutputDir);
        Directory.CreateDirectory(outDir);
        string dataDir = Path.Combine(outDir, "data"), baseDir = Path.Combine(outDir, "base"), sftDir = Path.Combine(outDir, "sft");

        // ---- 1. data, tokenizer, random base model
        var sw = Stopwatch.StartNew();
        progress?.Invoke(new DemoProgress(StageData, 0, 1));
        var data = TruthfulnessDataset.Generate(new TruthfulnessDatasetOptions
        {
            Seed = options.Seed,
            MaxNumber = options.MaxNumber,
            TrainQuestions = options.TrainQuestions,
            EvalQuestions = options.EvalQuestions,
        });
        Directory.CreateDirectory(dataDir);
        string sftPath = Path.Combine(dataDir, "sft.jsonl"), dpoPath = Path.Combine(dataDir, "dpo_train.jsonl"), evalPath = Path.Combine(dataDir, "dpo_eval.jsonl");
        data.WriteSftJsonl(sftPath, options.Seed);
        TruthfulnessDataset.WritePreferenceJsonl(dpoPath, data.Train);
        TruthfulnessDataset.WritePreferenceJsonl(evalPath, data.Eval);
        int vocab = DemoTokenizer.Write(baseDir, data.Words());
        var tokenizer = HfTokenizer.Load(baseDir);
        long parameters;
        using (var baseModel = ModelLoader.Create(DemoModelConfig(options, vocab, tokenizer.EosTokenId!.Value), device, options.Seed))
        {
            InitializeLikeTorchModules(baseModel, options.Seed);
            parameters = ModelLoader.CountParameters(baseModel);
            ModelSaver.Save(baseModel, baseDir);
        }

        progress?.Invoke(new DemoProgress(StageData, 1, 1));
        stages[StageData] = sw.Elapsed.TotalSeconds;

        // ---- 2. SFT on the 50/50 corpus (the same trainer `dposharp sft` runs)
        sw.Restart();
        using (var model = ModelLoader.Load(baseDir, device))
        {
            var sftArgs = new SftOptions
            {
                OutputDir = sftDir,
                LearningRate = options.SftLearningRate,
                PerDeviceTrainBatchSize = options.SftBatchSize,
                PerDeviceEvalBatchSize = 256,
                NumTrainEpochs = options.SftEpochs,
                LrSchedulerType = LrSchedulerType.Linear,
                WarmupSteps = 20,
                LoggingSteps = 20,
                Seed = options.Seed,
                MaxLength = 64,
                ReportTo = [ReportTarget.Jsonl, ReportTarget.Tensorboard, ReportTarget.Png],
                LogitsChunkSize = FullLogits,
            };
            using var sft = new SftTrainer(model, sftArgs, SftDataset.Load(sftPath), tokenizer)
            {
                TokenizerFilesSource = baseDir,
                MetricSinkFactories = { ["png"] = PngChartSink.Factory },
            };
            sft.StepCompleted += (s, t) => progress?.Invoke(new DemoProgress(StageSft, s, t));
            sft.Train(cancellationToken);
        }

        stages[StageSft] = sw.Elapsed.TotalSeconds;

        // ---- 3. DPO from the SFT model, reference = the SFT model; evaluation before and after
        var dpo = RunDpo(options, options.Beta, outDir, sftDir, dpoPath, evalPath, data.Eval, tokenizer, device, progress, stages, writeSinks: true, cancellationToken);
        var sweep = new List<DemoSweepPoint>();
        var charts = new List<string>(dpo.Charts);
        foreach (var beta in options.SweepBetas)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (Math.Abs(beta - options.Beta) < 1e-12)
            {
                sweep.Add(new DemoSweepPoint(beta, dpo.After.Truthfulness, dpo.After.KlToReference, dpo.After.RewardsAccuracies, dpo.After.RewardsMargins));
                continue;
            }

            var dir = Path.Combine(outDir, "sweep", "beta-" + beta.ToString(CultureInfo.InvariantCulture));
            var r = RunDpo(options, beta, dir, sftDir, dpoPath, evalPath, data.Eval, tokenizer, device, progress, stages, writeSinks: false, cancellationToken, beforeKnown: dpo.Before);
            sweep.Add(new DemoSweepPoint(beta, r.After.Truthfulness, r.After.KlToReference, r.After.RewardsAccuracies, r.After.RewardsMargins));
        }

        var chartDir = Path.Combine(outDir, "charts");
        charts.Add(DemoCharts.WriteTruthfulness(Path.Combine(chartDir, "truthfulness.png"), dpo.Before, dpo.After));
        if (sweep.Count > 0)
        {
            charts.Add(DemoCharts.WriteFrontier(Path.Combine(chartDir, "frontier.png"), dpo.Before.Truthfulness, sweep));
        }

        var result = new DemoResult(dpo.Before, dpo.After, data.Eval, sweep, stages, total.Elapsed.TotalSeconds, parameters, outDir, charts);
        WriteSummary(Path.Combine(outDir, "summary.json"), result, options);
        return result;
    }

    /// <summary>The demo's Llama <c>config.json</c>: untied embeddings, RoPE, SwiGLU, RMSNorm, 64 positions.</summary>
    public static ModelConfig DemoModelConfig(DemoOptions options, int vocabSize, int eosTokenId)
    {
        ArgumentNullException.ThrowIfNull(options);
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["vocab_size"] = vocabSize,
            ["hidden_size"] = options.HiddenSize,
            ["intermediate_size"] = options.IntermediateSize,
            ["num_hidden_layers"] = options.Layers,
            ["num_attention_heads"] = options.Heads,
            ["num_key_value_heads"] = options.Heads,
            ["max_position_embeddings"] = 64,
            ["rope_theta"] = 10000.0,
            ["rms_norm_eps"] = 1e-5,
            ["hidden_act"] = "silu",
            ["attention_bias"] = false,
            ["mlp_bias"] = false,
            ["tie_word_embeddings"] = false,
            ["bos_token_id"] = eosTokenId,
            ["eos_token_id"] = eosTokenId,
            ["pad_token_id"] = eosTokenId,
            ["torch_dtype"] = "float32",
        };
        return ModelConfig.Parse(json, "demo config");
    }

    /// <summary>
    /// Re-initialises weights as PyTorch's modules do by default (embeddings ~ N(0, 1), linear weights ~
    /// U(±1/√fan_in), norms 1), deterministic in <paramref name="seed"/>. At this tiny size the HF-style N(0, 0.02)
    /// init leaves SFT stuck on a plateau (measured: the model never learns to copy a number from the question).
    /// </summary>
    public static void InitializeLikeTorchModules(ICausalLM model, long seed)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var _ = no_grad();
        using var gen = new Generator((ulong)seed + 1, CPU);
        foreach (var (name, p) in model.Module.named_parameters())
        {
            using var scope = NewDisposeScope();
            if (p.dim() < 2)
            {
                p.fill_(1.0);
            }
            else if (name.Contains("embed_tokens", StringComparison.Ordinal))
            {
                p.copy_(empty(p.shape, ScalarType.Float32, CPU).normal_(0.0, 1.0, gen));
            }
            else
            {
                double bound = 1.0 / Math.Sqrt(p.shape[1]);
                p.copy_(empty(p.shape, ScalarType.Float32, CPU).uniform_(-bound, bound, gen));
            }
        }
    }

    /// <summary>
    /// Evaluates <paramref name="model"/> on held-out <paramref name="questions"/>: greedy answers (at most 4 new
    /// tokens), truthfulness (answer text exactly the true answer), false-answer rate and the KL divergence from
    /// <paramref name="reference"/> (<see cref="KlDefinition"/>).
    /// </summary>
    public static (double Truthfulness, double FalseRate, double Kl, IReadOnlyList<string> Answers) EvaluateGreedy(
        ICausalLM model, ICausalLM reference, ITokenizer tokenizer, IReadOnlyList<TruthfulQuestion> questions, Action<int>? onQuestion = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(questions);
        int truthful = 0, lies = 0;
        double kl = 0;
        var answers = new List<string>(questions.Count);
        var options = new GenerationOptions { MaxNewTokens = 4 };
        bool wasTraining = model.Module.training;
        model.Module.eval();
        try
        {
            for (int i = 0; i < questions.Count; i++)
            {
                var q = questions[i];
                var prompt = tokenizer.Encode(q.Prompt).ToList();
                if (tokenizer.AddsBosToken && tokenizer.BosTokenId is int bos)
                {
                    prompt.Insert(0, bos);
                }

                var completion = TextGenerator.Generate(model, prompt, options);
                var text = tokenizer.Decode(completion, skipSpecialTokens: true).Trim();
                answers.Add(text);
                truthful += text == q.TrueAnswer ? 1 : 0;
                lies += text == q.FalseAnswer ? 1 : 0;
                kl += CompletionKl(model, reference, prompt, completion);
                onQuestion?.Invoke(i + 1);
            }
        }
        finally
        {
            model.Module.train(wasTraining);
        }

        int n = Math.Max(1, questions.Count);
        return ((double)truthful / n, (double)lies / n, kl / n, answers);
    }

    /// <summary>
    /// Σ over the completion tokens of KL(π(·|prefix) ‖ π_ref(·|prefix)), exact over the vocabulary, where the
    /// prefixes are the prompt followed by the completion tokens before each one.
    /// </summary>
    public static double CompletionKl(ICausalLM model, ICausalLM reference, IReadOnlyList<int> prompt, IReadOnlyList<int> completion)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(completion);
        if (completion.Count == 0)
        {
            return 0;
        }

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int p = prompt.Count, t = prompt.Count + completion.Count;
        var ids = tensor(prompt.Concat(completion).Select(x => (long)x).ToArray(), device: model.Device).unsqueeze(0);  // (1, T)
        var lp = nn.functional.log_softmax(model.Forward(ids)[0, (p - 1)..(t - 1)], -1);                                // (C, V)
        var lq = nn.functional.log_softmax(reference.Forward(ids.to(reference.Device))[0, (p - 1)..(t - 1)].to(model.Device), -1);
        return (lp.exp() * (lp - lq)).sum().item<float>();
    }

    private sealed record DpoRun(DemoEvaluation Before, DemoEvaluation After, IReadOnlyList<string> Charts);

    private static DpoRun RunDpo(
        DemoOptions options,
        double beta,
        string outDir,
        string sftDir,
        string dpoPath,
        string evalPath,
        IReadOnlyList<TruthfulQuestion> evalQuestions,
        ITokenizer tokenizer,
        Device device,
        Action<DemoProgress>? progress,
        Dictionary<string, double> stages,
        bool writeSinks,
        CancellationToken cancellationToken,
        DemoEvaluation? beforeKnown = null)
    {
        string suffix = writeSinks ? "" : $" β={beta.ToString(CultureInfo.InvariantCulture)}";
        using var policy = ModelLoader.Load(sftDir, device);
        using var reference = ModelLoader.Load(sftDir, device);
        var args = new DpoOptions
        {
            OutputDir = outDir,
            Beta = beta,
            LossType = [LossTypes.Sigmoid],
            RpoAlpha = options.RpoAlpha > 0 ? options.RpoAlpha : null,
            LearningRate = options.DpoLearningRate,
            PerDeviceTrainBatchSize = options.DpoBatchSize,
            PerDeviceEvalBatchSize = 256,
            MaxSteps = options.DpoSteps,
            LrSchedulerType = LrSchedulerType.ConstantWithWarmup,
            WarmupSteps = 10,
            LoggingSteps = 10,
            EvalStrategy = EvalStrategy.Steps,
            EvalSteps = Math.Max(10, options.DpoSteps / 10),
            SaveSteps = int.MaxValue,
            Seed = options.Seed,
            MaxLength = 64,
            MaxPromptLength = 48,
            ReportTo = writeSinks ? [ReportTarget.Jsonl, ReportTarget.Tensorboard, ReportTarget.Png] : [ReportTarget.Jsonl],
            LogitsChunkSize = FullLogits,
            PrefixSharing = PrefixSharing,
        };
        var train = PreferenceDatasetLoader.Load(dpoPath);
        var eval = PreferenceDatasetLoader.Load(evalPath);
        using var trainer = new DpoTrainer(policy, reference, args, train, tokenizer, eval)
        {
            TokenizerFilesSource = sftDir,
            MetricSinkFactories = { ["png"] = PngChartSink.Factory },
        };

        // Before: the policy is the SFT model itself (KL 0, margins 0).
        var sw = Stopwatch.StartNew();
        DemoEvaluation before;
        if (beforeKnown is null)
        {
            var m0 = trainer.Evaluate();
            var g0 = EvaluateGreedy(policy, reference, tokenizer, evalQuestions, i => progress?.Invoke(new DemoProgress(StageEvalBefore, i, evalQuestions.Count)));
            before = new DemoEvaluation(g0.Truthfulness, g0.FalseRate, m0["eval_rewards/accuracies"], m0["eval_rewards/margins"], g0.Kl, g0.Answers);
            stages[StageEvalBefore] = sw.Elapsed.TotalSeconds;
        }
        else
        {
            before = beforeKnown;
        }

        sw.Restart();
        trainer.StepCompleted += (s, t) => progress?.Invoke(new DemoProgress(StageDpo + suffix, s, t));
        trainer.Train(cancellationToken: cancellationToken);
        stages[StageDpo + suffix] = sw.Elapsed.TotalSeconds;

        sw.Restart();
        var last = trainer.State.LogHistory.Last(e => e.Metrics.ContainsKey("eval_loss")).Metrics;
        var g1 = EvaluateGreedy(policy, reference, tokenizer, evalQuestions, i => progress?.Invoke(new DemoProgress(StageEvalAfter + suffix, i, evalQuestions.Count)));
        var after = new DemoEvaluation(g1.Truthfulness, g1.FalseRate, last["eval_rewards/accuracies"], last["eval_rewards/margins"], g1.Kl, g1.Answers);
        stages[StageEvalAfter + suffix] = sw.Elapsed.TotalSeconds;
        var chartDir = Path.Combine(outDir, "charts");
        var charts = writeSinks && Directory.Exists(chartDir)
            ? Directory.GetFiles(chartDir, "*.png").Order(StringComparer.Ordinal).ToList()
            : [];
        return new DpoRun(before, after, charts);
    }

    private static void WriteSummary(string path, DemoResult r, DemoOptions o)
    {
        var examples = new JsonArray();
        for (int i = 0; i < Math.Min(3, r.EvalQuestions.Count); i++)
        {
            examples.Add(new JsonObject
            {
                ["question"] = r.EvalQuestions[i].Prompt,
                ["true_answer"] = r.EvalQuestions[i].TrueAnswer,
                ["before"] = r.Before.Answers[i],
                ["after"] = r.After.Answers[i],
            });
        }

        var stageJson = new JsonObject();
        foreach (var (k, v) in r.StageSeconds)
        {
            stageJson[k] = Math.Round(v, 2);
        }

        var sweep = new JsonArray();
        foreach (var p in r.Sweep)
        {
            sweep.Add(new JsonObject
            {
                ["beta"] = p.Beta,
                ["truthfulness"] = p.Truthfulness,
                ["kl_to_reference"] = p.KlToReference,
                ["eval_rewards_accuracies"] = p.RewardsAccuracies,
                ["eval_rewards_margins"] = p.RewardsMargins,
            });
        }

        var json = new JsonObject
        {
            ["truthfulness_before"] = r.Before.Truthfulness,
            ["truthfulness_after"] = r.After.Truthfulness,
            ["false_answer_rate_before"] = r.Before.FalseAnswerRate,
            ["false_answer_rate_after"] = r.After.FalseAnswerRate,
            ["eval_rewards_accuracies"] = r.After.RewardsAccuracies,
            ["eval_rewards_margins"] = r.After.RewardsMargins,
            ["eval_rewards_accuracies_before"] = r.Before.RewardsAccuracies,
            ["eval_rewards_margins_before"] = r.Before.RewardsMargins,
            ["kl_to_reference"] = r.After.KlToReference,
            ["kl_definition"] = KlDefinition,
            ["seconds"] = Math.Round(r.Seconds, 2),
            ["stage_seconds"] = stageJson,
            ["eval_questions"] = r.EvalQuestions.Count,
            ["train_questions"] = o.TrainQuestions,
            ["parameters"] = r.Parameters,
            ["beta"] = o.Beta,
            ["rpo_alpha"] = o.RpoAlpha,
            ["sft_epochs"] = o.SftEpochs,
            ["dpo_steps"] = o.DpoSteps,
            ["seed"] = o.Seed,
            ["examples"] = examples,
            ["sweep"] = sweep,
        };
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
    }
}
