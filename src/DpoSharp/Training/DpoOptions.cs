using System.ComponentModel;
using System.Globalization;
using System.Reflection;
using System.Text;
using DpoSharp.Losses;
using DpoSharp.Training.Engine;

namespace DpoSharp.Training;

/// <summary>
/// Every option of a DPO run, named as TRL's <c>DPOConfig</c> / transformers' <c>TrainingArguments</c> where the
/// concept is the same: snake_case keys in config files (<c>learning_rate</c>), kebab-case command-line flags
/// (<c>--learning-rate</c>). Defaults are TRL's unless documented otherwise. Load with <see cref="LoadFile"/>,
/// override with <see cref="Apply(string, string?)"/>, check with <see cref="Validate"/>.
/// </summary>
public sealed partial class DpoOptions
{
    /// <summary>Accepted <see cref="LrSchedulerType"/> values.</summary>
    public static IReadOnlyList<string> LrSchedulerTypes { get; } = LrSchedule.Types;

    /// <summary>Accepted <see cref="TruncationMode"/> values.</summary>
    public static IReadOnlyList<string> TruncationModes { get; } = ["keep_end", "keep_start"];

    /// <summary>Accepted <see cref="EvalStrategy"/> values.</summary>
    public static IReadOnlyList<string> EvalStrategies { get; } = ["no", "steps", "epoch"];

    /// <summary>Accepted <see cref="ReportTo"/> values (<c>all</c> = every sink, <c>none</c> = no sink).</summary>
    public static IReadOnlyList<string> ReportTargets { get; } = ["jsonl", "tensorboard", "png", "console", "all", "none"];

    // ---------------------------------------------------------------- model

    /// <summary>Policy model: a Hugging Face model directory (config.json + safetensors).</summary>
    /// <value>Default null (required by <c>dposharp train</c>).</value>
    [Description("policy model directory (HF layout)")]
    public string? Model { get; set; }

    /// <summary>Reference model directory; null: a frozen copy of the starting policy.</summary>
    /// <value>Default null.</value>
    [Description("reference model directory; default: a frozen copy of the starting model")]
    public string? RefModel { get; set; }

    /// <summary>Device: <c>auto</c> (CUDA when available, else CPU), <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    /// <value>Default <c>auto</c>.</value>
    [Description("auto / cpu / cuda / cuda:N")]
    public string Device { get; set; } = "auto";

    /// <summary>Disable dropout in the policy and the reference model.</summary>
    /// <value>Default true (TRL).</value>
    [Description("disable dropout in the policy and reference models")]
    public bool DisableDropout { get; set; } = true;

    // ---------------------------------------------------------------- data

    /// <summary>Training preference data: a file (JSON, JSONL, Parquet) or a dataset directory.</summary>
    /// <value>Default null (required by <c>dposharp train</c>).</value>
    [Description("training data: file (jsonl/json/parquet/csv/tsv) or dataset directory")]
    public string? Dataset { get; set; }

    /// <summary>Evaluation data; null: the <see cref="DatasetTestSplit"/> of <see cref="Dataset"/> when it has one.</summary>
    /// <value>Default null.</value>
    [Description("evaluation data; default: the test split of dataset, if any")]
    public string? EvalDataset { get; set; }

    /// <summary>Split used for training when <see cref="Dataset"/> is a dataset folder with splits.</summary>
    /// <value>Default null: <c>train</c> when present, else the only split.</value>
    [Description("split of dataset used for training (default: train, else the only split)")]
    public string? DatasetTrainSplit { get; set; }

    /// <summary>Split used for evaluation when <see cref="Dataset"/> is a directory with splits.</summary>
    /// <value>Default <c>test</c>.</value>
    [Description("split of dataset used for evaluation")]
    public string DatasetTestSplit { get; set; } = "test";

    /// <summary>Column holding the prompt (text or a message list).</summary>
    /// <value>Default null: <c>prompt</c> when present, else <c>conversations</c>, else the shared beginning of chosen
    /// and rejected.</value>
    [Description("prompt column (default: prompt, else conversations, else implicit)")]
    public string? PromptColumn { get; set; }

    /// <summary>Column holding the preferred completion.</summary>
    /// <value>Default <c>chosen</c>.</value>
    [Description("chosen (preferred) completion column")]
    public string ChosenColumn { get; set; } = "chosen";

    /// <summary>Column holding the dispreferred completion.</summary>
    /// <value>Default <c>rejected</c>.</value>
    [Description("rejected completion column")]
    public string RejectedColumn { get; set; } = "rejected";

    /// <summary>Optional column with a system text (used when present, as truthy-dpo's <c>system</c>).</summary>
    /// <value>Default <c>system</c>.</value>
    [Description("optional system-text column")]
    public string SystemColumn { get; set; } = "system";

    /// <summary>Maximum tokens of prompt + completion; null: no limit.</summary>
    /// <value>Default 1024.</value>
    [Description("max tokens of prompt + completion (null: no limit)")]
    public int? MaxLength { get; set; } = 1024;

    /// <summary>Maximum prompt tokens (prompts are cut from the left); null: no limit.</summary>
    /// <value>Default 512.</value>
    [Description("max prompt tokens (null: no limit)")]
    public int? MaxPromptLength { get; set; } = 512;

    /// <summary>Maximum completion tokens; null: no limit.</summary>
    /// <value>Default null.</value>
    [Description("max completion tokens (null: no limit)")]
    public int? MaxCompletionLength { get; set; }

    /// <summary>What to keep of a sequence longer than <see cref="MaxLength"/>: <c>keep_end</c> or <c>keep_start</c>.</summary>
    /// <value>Default <c>keep_end</c>.</value>
    [Description("keep_end / keep_start")]
    public string TruncationMode { get; set; } = "keep_end";

    /// <summary>Pad batches to a multiple of this many tokens; null: to the longest row.</summary>
    /// <value>Default null.</value>
    [Description("pad sequence length to a multiple of N")]
    public int? PadToMultipleOf { get; set; }

    /// <summary>Padding-free (packed) batches. Not supported yet: must stay false.</summary>
    /// <value>Default false.</value>
    [Description("packed batches without padding (not supported yet)")]
    public bool PaddingFree { get; set; }

    /// <summary>Group rows of similar length into batches (less padding).</summary>
    /// <value>Default false.</value>
    [Description("batch rows of similar length together")]
    public bool GroupByLength { get; set; }

    // ---------------------------------------------------------------- loss

    /// <summary>β: strength of the tie to the reference model (IPO's τ).</summary>
    /// <value>Default 0.1.</value>
    [Description("beta: deviation from the reference model (IPO: tau)")]
    public double Beta { get; set; } = 0.1;

    /// <summary>Loss type(s), TRL names (see README, Losses); several combine with <see cref="LossWeights"/>.</summary>
    /// <value>Default <c>[sigmoid]</c>.</value>
    [Description("loss type(s), comma-separated: sigmoid, ipo, hinge, robust, …")]
    public List<string> LossType { get; set; } = ["sigmoid"];

    /// <summary>One weight per loss in <see cref="LossType"/>; null: all 1.</summary>
    /// <value>Default null.</value>
    [Description("weights of the loss types, comma-separated")]
    public List<double>? LossWeights { get; set; }

    /// <summary>Label smoothing ε in [0, 0.5] (cDPO, robust, exo_pair, aot).</summary>
    /// <value>Default 0.</value>
    [Description("label smoothing in [0, 0.5] (cDPO, robust, exo_pair, aot)")]
    public double LabelSmoothing { get; set; }

    /// <summary>Train without a reference model (reference log-probs = 0).</summary>
    /// <value>Default false.</value>
    [Description("no reference model: reference log-probs are 0")]
    public bool ReferenceFree { get; set; }

    /// <summary>f-divergence: reverse_kl, forward_kl, js_divergence or alpha_divergence.</summary>
    /// <value>Default <c>reverse_kl</c>.</value>
    [Description("reverse_kl / forward_kl / js_divergence / alpha_divergence")]
    public string FDivergenceType { get; set; } = LossOptions.ReverseKl;

    /// <summary>α of the α-divergence.</summary>
    /// <value>Default 1.0.</value>
    [Description("alpha of alpha_divergence")]
    public double FAlphaDivergenceCoef { get; set; } = 1.0;

    /// <summary>τ of the discopop loss.</summary>
    /// <value>Default 0.05.</value>
    [Description("tau of the discopop loss")]
    public double DiscopopTau { get; set; } = 0.05;

    /// <summary>Weight of the chosen NLL term (RPO); null: none.</summary>
    /// <value>Default null.</value>
    [Description("weight of the NLL term on chosen completions (RPO)")]
    public double? RpoAlpha { get; set; }

    /// <summary>Weight pair losses by the policy's (length-normalised) probability of both completions (WPO).</summary>
    /// <value>Default false.</value>
    [Description("WPO weighting of pair losses")]
    public bool UseWeighting { get; set; }

    /// <summary>Compute reference log-probs once before training (cached on disk) instead of every step.</summary>
    /// <value>Default false.</value>
    [Description("compute reference log-probs once before training (cached)")]
    public bool PrecomputeRefLogProbs { get; set; }

    /// <summary>Batch size of the reference pre-computation; null: the train/eval batch size.</summary>
    /// <value>Default null.</value>
    [Description("batch size of the reference pre-computation")]
    public int? PrecomputeRefBatchSize { get; set; }

    // ---------------------------------------------------------------- optimisation

    /// <summary>Peak learning rate of AdamW.</summary>
    /// <value>Default 1e-6 (TRL).</value>
    [Description("peak learning rate")]
    public double LearningRate { get; set; } = 1e-6;

    /// <summary>Pairs per micro-batch.</summary>
    /// <value>Default 8 (transformers).</value>
    [Description("pairs per micro-batch")]
    public int PerDeviceTrainBatchSize { get; set; } = 8;

    /// <summary>Pairs per evaluation batch.</summary>
    /// <value>Default 8.</value>
    [Description("pairs per evaluation batch")]
    public int PerDeviceEvalBatchSize { get; set; } = 8;

    /// <summary>Micro-batches accumulated per optimizer step.</summary>
    /// <value>Default 1.</value>
    [Description("micro-batches per optimizer step")]
    public int GradientAccumulationSteps { get; set; } = 1;

    /// <summary>Epochs over the training data (fractions allowed); ignored when <see cref="MaxSteps"/> &gt; 0.</summary>
    /// <value>Default 3.</value>
    [Description("epochs (ignored when max_steps > 0)")]
    public double NumTrainEpochs { get; set; } = 3;

    /// <summary>Optimizer steps to run; −1: derived from <see cref="NumTrainEpochs"/>.</summary>
    /// <value>Default −1.</value>
    [Description("optimizer steps (-1: from num_train_epochs)")]
    public int MaxSteps { get; set; } = -1;

    /// <summary>Learning-rate schedule: constant, constant_with_warmup, linear or cosine.</summary>
    /// <value>Default <c>linear</c> (transformers).</value>
    [Description("constant / constant_with_warmup / linear / cosine")]
    public string LrSchedulerType { get; set; } = "linear";

    /// <summary>Warm-up as a fraction of all steps (used when <see cref="WarmupSteps"/> is 0).</summary>
    /// <value>Default 0.</value>
    [Description("warm-up fraction of total steps (used when warmup_steps is 0)")]
    public double WarmupRatio { get; set; }

    /// <summary>Warm-up steps; overrides <see cref="WarmupRatio"/> when positive.</summary>
    /// <value>Default 0.</value>
    [Description("warm-up steps (overrides warmup_ratio)")]
    public int WarmupSteps { get; set; }

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

    /// <summary>Seed of every random choice (data order, dropout): same seed, same run.</summary>
    /// <value>Default 42.</value>
    [Description("random seed")]
    public int Seed { get; set; } = 42;

    // ---------------------------------------------------------------- logging, evaluation, saving

    /// <summary>Where checkpoints (<c>checkpoint-&lt;step&gt;/</c>), metrics and the final model go.</summary>
    /// <value>Default <c>trainer_output</c> (transformers).</value>
    [Description("output directory: final model, checkpoints, metrics")]
    public string OutputDir { get; set; } = "trainer_output";

    /// <summary>Log metrics every N optimizer steps.</summary>
    /// <value>Default 10 (TRL).</value>
    [Description("log metrics every N steps")]
    public int LoggingSteps { get; set; } = 10;

    /// <summary>Save a checkpoint every N optimizer steps.</summary>
    /// <value>Default 500.</value>
    [Description("save a checkpoint every N steps")]
    public int SaveSteps { get; set; } = 500;

    /// <summary>Keep at most this many checkpoints (oldest deleted); null: keep all.</summary>
    /// <value>Default null.</value>
    [Description("keep at most N checkpoints")]
    public int? SaveTotalLimit { get; set; }

    /// <summary>When to evaluate: no, steps (every <see cref="EvalSteps"/>) or epoch.</summary>
    /// <value>Default <c>no</c>.</value>
    [Description("no / steps / epoch")]
    public string EvalStrategy { get; set; } = "no";

    /// <summary>Evaluate every N steps when <see cref="EvalStrategy"/> is <c>steps</c>; null: <see cref="LoggingSteps"/>.</summary>
    /// <value>Default null.</value>
    [Description("evaluate every N steps (default: logging_steps)")]
    public int? EvalSteps { get; set; }

    /// <summary>Metric sinks: jsonl, tensorboard, png, console; <c>all</c> or <c>none</c>.</summary>
    /// <value>Default <c>[all]</c>.</value>
    [Description("metric sinks: jsonl, tensorboard, png, console, all, none")]
    public List<string> ReportTo { get; set; } = ["all"];

    /// <summary>Resume from this checkpoint directory.</summary>
    /// <value>Default null.</value>
    [Description("resume from this checkpoint directory")]
    public string? ResumeFromCheckpoint { get; set; }

    /// <summary>Resume from the newest <c>checkpoint-*</c> in <see cref="OutputDir"/>.</summary>
    /// <value>Default false.</value>
    [Description("resume from the newest checkpoint in output_dir")]
    public bool Resume { get; set; }

    /// <summary>
    /// Allow a fresh run (no resume) into an <see cref="OutputDir"/> that holds an earlier run's model or
    /// checkpoints: the old <c>checkpoint-*</c> folders are deleted first, the model is replaced at the end.
    /// Without it the CLI refuses such a run (transformers' <c>overwrite_output_dir</c>).
    /// </summary>
    /// <value>Default false.</value>
    [Description("allow a fresh run into an output_dir holding an earlier run (its checkpoints are deleted)")]
    public bool OverwriteOutputDir { get; set; }

    /// <summary>Evaluation steps derived from <see cref="EvalSteps"/> / <see cref="LoggingSteps"/>.</summary>
    public int EffectiveEvalSteps => EvalSteps ?? LoggingSteps;

    /// <summary>The sinks <see cref="ReportTo"/> selects (<c>all</c> and <c>none</c> expanded).</summary>
    public IReadOnlyList<string> EffectiveReportTo
    {
        get
        {
            if (ReportTo.Contains("none"))
            {
                return [];
            }

            return ReportTo.Contains("all") ? ["jsonl", "tensorboard", "png", "console"] : [.. ReportTo.Distinct()];
        }
    }

    /// <summary>Loss hyper-parameters from these options.</summary>
    public LossOptions ToLossOptions() => new()
    {
        LabelSmoothing = LabelSmoothing,
        ReferenceFree = ReferenceFree,
        FDivergenceType = FDivergenceType,
        FAlphaDivergenceCoef = FAlphaDivergenceCoef,
        DiscopopTau = DiscopopTau,
        RpoAlpha = RpoAlpha,
    };

    /// <summary>How to read the training (or, with <paramref name="split"/>, another) split of <see cref="Dataset"/>.</summary>
    public DpoSharp.Data.DatasetOptions ToDatasetOptions(string? split = null) => new()
    {
        PromptColumn = PromptColumn,
        ChosenColumn = ChosenColumn,
        RejectedColumn = RejectedColumn,
        SystemColumn = SystemColumn,
        Split = split ?? DatasetTrainSplit,
    };

    /// <summary>Length limits for tokenization.</summary>
    public DpoSharp.Data.TokenizationOptions ToTokenizationOptions() => new()
    {
        MaxLength = MaxLength,
        MaxPromptLength = MaxPromptLength,
        MaxCompletionLength = MaxCompletionLength,
        TruncationMode = DpoSharp.Data.TokenizationOptions.ParseTruncationMode(TruncationMode),
    };

    /// <summary>The (combined) loss these options select.</summary>
    public CombinedPreferenceLoss CreateLoss() => PreferenceLosses.Create(LossType, LossWeights, ToLossOptions());

    /// <summary>A deep copy.</summary>
    public DpoOptions Clone()
    {
        var c = (DpoOptions)MemberwiseClone();
        c.LossType = [.. LossType];
        c.LossWeights = LossWeights is null ? null : [.. LossWeights];
        c.ReportTo = [.. ReportTo];
        return c;
    }

    // ---------------------------------------------------------------- option metadata and overrides

    /// <summary>One option: its config key, CLI flag, type, default and help.</summary>
    public sealed record OptionInfo(string Name, string Flag, Type Type, string Default, string Description);

    private static readonly IReadOnlyList<(OptionInfo Info, PropertyInfo Property)> OptionTable = BuildTable();

    /// <summary>Every option, in declaration order.</summary>
    public static IReadOnlyList<OptionInfo> Options { get; } = [.. OptionTable.Select(o => o.Info)];

    /// <summary>
    /// Sets one option from text, as a command-line flag does. <paramref name="key"/> is the config name or flag
    /// (<c>learning_rate</c>, <c>learning-rate</c>, <c>--learning-rate</c>); lists are comma-separated; <c>null</c>
    /// clears an optional value; a bare boolean flag may pass <c>true</c>. Throws <see cref="DpoSharpException"/>
    /// naming the option for unknown names and unparsable values.
    /// </summary>
    public void Apply(string key, string? value) => ApplyCore(key, value is null ? null : [value], value, source: null);

    /// <summary>Applies <paramref name="overrides"/> in order (flags over the file).</summary>
    public void Apply(IEnumerable<KeyValuePair<string, string?>> overrides)
    {
        ArgumentNullException.ThrowIfNull(overrides);
        foreach (var (k, v) in overrides)
        {
            Apply(k, v);
        }
    }

    /// <summary>The current value of an option as text (lists comma-separated, <c>null</c> for none).</summary>
    public string Get(string key)
    {
        var (_, prop) = Find(key, null);
        return Format(prop.GetValue(this));
    }

    /// <summary>The options as an ordered name → value map (for saving next to a run).</summary>
    public IReadOnlyDictionary<string, object?> ToDictionary()
    {
        var d = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (info, prop) in OptionTable)
        {
            d[info.Name] = prop.GetValue(this);
        }

        return d;
    }

    /// <summary>Snake-case config name of a PascalCase property name.</summary>
    public static string ToSnakeCase(string pascal)
    {
        ArgumentNullException.ThrowIfNull(pascal);
        var sb = new StringBuilder();
        for (int i = 0; i < pascal.Length; i++)
        {
            char c = pascal[i];
            if (char.IsUpper(c) && i > 0)
            {
                sb.Append('_');
            }

            sb.Append(char.ToLowerInvariant(c));
        }

        return sb.ToString();
    }

    private static List<(OptionInfo, PropertyInfo)> BuildTable()
    {
        var defaults = new DpoOptions();
        var list = new List<(OptionInfo, PropertyInfo)>();
        foreach (var p in typeof(DpoOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!p.CanWrite || p.GetSetMethod() is null)
            {
                continue;
            }

            var name = ToSnakeCase(p.Name);
            var help = p.GetCustomAttribute<DescriptionAttribute>()?.Description ?? string.Empty;
            list.Add((new OptionInfo(name, "--" + name.Replace('_', '-'), p.PropertyType, Format(p.GetValue(defaults)), help), p));
        }

        return list;
    }

    private static (OptionInfo Info, PropertyInfo Property) Find(string key, string? source)
    {
        ArgumentNullException.ThrowIfNull(key);
        var name = key.Trim().TrimStart('-').Replace('-', '_');
        foreach (var entry in OptionTable)
        {
            if (string.Equals(entry.Info.Name, name, StringComparison.Ordinal))
            {
                return entry;
            }
        }

        var close = NameSuggestions.Closest(name, OptionTable.Select(o => o.Info.Name));
        var hint = close.Count > 0 ? $" Did you mean {string.Join(" or ", close)}?" : " See the Configuration section of the README for every option.";
        throw new DpoSharpException($"{Where(source)}unknown option '{key}'.{hint}");
    }

    private static string Where(string? source) => source is null ? string.Empty : source + ": ";

    private void ApplyCore(string key, IReadOnlyList<string>? items, string? scalar, string? source)
    {
        var (info, prop) = Find(key, source);
        var t = prop.PropertyType;
        var underlying = Nullable.GetUnderlyingType(t);
        bool nullable = underlying is not null || !t.IsValueType;
        bool isNull = items is null || (t != typeof(List<string>) && items.Count == 1 && IsNullText(items[0]));
        string Bad(string what) => $"{Where(source)}option {info.Name}: '{scalar ?? string.Join(",", items ?? [])}' is not {what}.";

        if (isNull)
        {
            bool requiredText = t == typeof(string) && prop.GetValue(new DpoOptions()) is not null;
            if (!nullable || requiredText || t == typeof(List<string>))
            {
                throw new DpoSharpException($"{Where(source)}option {info.Name} needs a value (it has no 'null' setting).");
            }

            prop.SetValue(this, null);
            return;
        }

        if (t == typeof(List<string>) || t == typeof(List<double>))
        {
            var parts = items!.Count == 1 ? items[0].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) : [.. items.Select(s => s.Trim())];
            if (t == typeof(List<string>))
            {
                prop.SetValue(this, parts.ToList());
                return;
            }

            var numbers = new List<double>();
            foreach (var s in parts)
            {
                if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                {
                    throw new DpoSharpException(Bad("a comma-separated list of numbers"));
                }

                numbers.Add(v);
            }

            prop.SetValue(this, numbers);
            return;
        }

        if (items!.Count != 1)
        {
            throw new DpoSharpException($"{Where(source)}option {info.Name} takes one value, not a list.");
        }

        var text = items[0].Trim();
        var target = underlying ?? t;
        if (target == typeof(string))
        {
            prop.SetValue(this, text);
        }
        else if (target == typeof(bool))
        {
            prop.SetValue(this, text.ToLowerInvariant() switch
            {
                "true" or "yes" or "on" or "1" => true,
                "false" or "no" or "off" or "0" => false,
                _ => throw new DpoSharpException(Bad("true or false")),
            });
        }
        else if (target == typeof(int))
        {
            if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
            {
                // 1e3 or 10.0 in a YAML file: accept whole numbers written as floats.
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || d != Math.Floor(d) || Math.Abs(d) > int.MaxValue)
                {
                    throw new DpoSharpException(Bad("a whole number"));
                }

                v = (int)d;
            }

            prop.SetValue(this, v);
        }
        else if (target == typeof(double))
        {
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
            {
                throw new DpoSharpException(Bad("a number"));
            }

            prop.SetValue(this, v);
        }
        else
        {
            throw new InvalidOperationException($"option {info.Name} has unsupported type {t}");
        }
    }

    private static bool IsNullText(string s) => s.Trim() is "null" or "None" or "none" or "~" or "";

    private static string Format(object? value) => value switch
    {
        null => "null",
        string s => s,
        bool b => b ? "true" : "false",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IEnumerable<string> l => string.Join(",", l),
        IEnumerable<double> l => string.Join(",", l.Select(x => x.ToString("R", CultureInfo.InvariantCulture))),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };
}
