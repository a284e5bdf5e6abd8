using DpoSharp.Cli.Options;
using DpoSharp.Data;
using DpoSharp.Tests.Cli.Commands;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using static DpoSharp.Tests.TestSupport.CliRunner;

namespace DpoSharp.Tests.Cli.Options;

/// <summary>
/// Issue 10, item 1: a value in the config file applies unless the same option is given on the command line; a flag
/// overrides the file. Every option type (bool, int, float, string, list, enum, nullable), from YAML, from JSON and
/// from flags, checked on the options object and on the options a real <c>dposharp train</c> run uses (its saved
/// <c>dposharp_config.yaml</c> is written from the options the trainer got).
/// </summary>
public class ConfigPrecedenceTests
{
    /// <summary>One value per option type, none of them the default.</summary>
    private const string Yaml = """
        reference_free: true
        disable_dropout: false
        group_by_length: true
        max_steps: 3
        beta: 0.25
        chosen_column: good
        loss_type: [sigmoid, sft]
        loss_weights: [1.0, 0.5]
        lr_scheduler_type: constant_with_warmup
        truncation_mode: keep_start
        report_to: [jsonl, png]
        max_prompt_length: null
        rpo_alpha: 0.5
        eval_steps: 7
        """;

    private const string Json = """
        {
          "reference_free": true, "disable_dropout": false, "group_by_length": true, "max_steps": 3, "beta": 0.25,
          "chosen_column": "good", "loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5],
          "lr_scheduler_type": "constant_with_warmup", "truncation_mode": "keep_start", "report_to": ["jsonl", "png"],
          "max_prompt_length": null, "rpo_alpha": 0.5, "eval_steps": 7
        }
        """;

    private static readonly string[] Flags =
    [
        "--reference-free", "--disable-dropout", "false", "--group_by_length", "--max-steps", "3", "--beta=0.25",
        "--chosen-column", "good", "--loss-type", "sigmoid,sft", "--loss_weights", "1,0.5", "--lr-scheduler-type",
        "constant_with_warmup", "--truncation-mode", "keep_start", "--report-to", "jsonl,png", "--max-prompt-length",
        "null", "--rpo-alpha", "0.5", "--eval_steps", "7",
    ];

    private static void AssertEveryTypeApplied(DpoOptions o)
    {
        Assert.True(o.ReferenceFree);                                            // bool, default false
        Assert.False(o.DisableDropout);                                          // bool, default true
        Assert.True(o.GroupByLength);
        Assert.Equal(3, o.MaxSteps);                                             // int
        Assert.Equal(0.25, o.Beta);                                              // float
        Assert.Equal("good", o.ChosenColumn);                                    // string
        Assert.Equal(["sigmoid", "sft"], o.LossType);                            // list of text
        Assert.Equal([1.0, 0.5], o.LossWeights!);                                // list of numbers
        Assert.Equal(LrSchedulerType.ConstantWithWarmup, o.LrSchedulerType);     // enum
        Assert.Equal(TruncationMode.KeepStart, o.TruncationMode);
        Assert.Equal([ReportTarget.Jsonl, ReportTarget.Png], o.ReportTo);        // list of an enum
        Assert.Null(o.MaxPromptLength);                                          // nullable, set to null
        Assert.Equal(0.5, o.RpoAlpha);                                           // nullable, set
        Assert.Equal(7, o.EvalSteps);
    }

    [Fact]
    public void EveryOptionTypeAppliesFromYamlJsonAndFlags()
    {
        using var dir = TestPaths.CreateTempDir();
        var yaml = Path.Combine(dir.Path, "run.yaml");
        var json = Path.Combine(dir.Path, "run.json");
        File.WriteAllText(yaml, Yaml);
        File.WriteAllText(json, Json);
        AssertEveryTypeApplied(OptionBinder.Load<DpoOptions>(yaml));
        AssertEveryTypeApplied(OptionBinder.Load<DpoOptions>(json));
        AssertEveryTypeApplied(OptionBinder.Load<DpoOptions>(null, OptionBinder.ParseArguments<DpoOptions>(Flags)));

        // And back: the saved YAML reads as the same options.
        AssertEveryTypeApplied(OptionBinder.FromYaml<DpoOptions>(OptionBinder.ToYaml(OptionBinder.Load<DpoOptions>(yaml))));
    }

    [Fact]
    public void FlagsOverrideTheFileAndOptionsNotGivenKeepTheFilesValue()
    {
        using var dir = TestPaths.CreateTempDir();
        var yaml = Path.Combine(dir.Path, "run.yaml");
        File.WriteAllText(yaml, Yaml);
        var o = OptionBinder.Load<DpoOptions>(yaml, OptionBinder.ParseArguments<DpoOptions>(
        [
            "--reference_free", "false", "--disable-dropout", "--max-steps", "5", "--beta", "0.5", "--chosen-column", "better",
            "--loss-type", "ipo", "--loss-weights", "null", "--lr-scheduler-type", "cosine", "--report-to", "none",
            "--max-prompt-length", "64", "--rpo-alpha", "null",
        ]));
        Assert.False(o.ReferenceFree);
        Assert.True(o.DisableDropout);
        Assert.Equal((5, 0.5, "better"), (o.MaxSteps, o.Beta, o.ChosenColumn));
        Assert.Equal(["ipo"], o.LossType);
        Assert.Null(o.LossWeights);
        Assert.Equal(LrSchedulerType.Cosine, o.LrSchedulerType);
        Assert.Equal([ReportTarget.None], o.ReportTo);
        Assert.Equal(64, o.MaxPromptLength);
        Assert.Null(o.RpoAlpha);

        // Not given on the command line: the file's values.
        Assert.True(o.GroupByLength);
        Assert.Equal(TruncationMode.KeepStart, o.TruncationMode);
        Assert.Equal(7, o.EvalSteps);
    }

    [Fact]
    public void ReportToNoneInYamlIsTheNoneTargetNotANull()
    {
        var o = OptionBinder.FromYaml<DpoOptions>("report_to: none\neval_strategy: no\n");
        Assert.Equal([ReportTarget.None], o.ReportTo);
        Assert.Equal(EvalStrategy.No, o.EvalStrategy);
        Assert.Empty(o.EffectiveReportTo);
    }

    /// <summary>The saved config of a one-step <c>train</c> run, read back.</summary>
    private static (DpoOptions Options, string Yaml, string Out) TrainOneStep(string root, string name, string[] args)
    {
        var output = Path.Combine(root, name);
        var (rc, stdout, err) = Run(["train", .. args, "--output-dir", output, "--device", "cpu"]);
        Assert.True(rc == 0, err + stdout);
        var saved = Path.Combine(output, "dposharp_config.yaml");
        return (OptionBinder.LoadFile<DpoOptions>(saved), File.ReadAllText(saved), stdout);
    }

    [Fact]
    public void TrainRunsWithTheFilesValuesUnlessAFlagOverridesThem()
    {
        using var dir = TestPaths.CreateTempDir();
        var (model, dataset) = CliTrainTests.WriteTinyJob(dir.Path, rows: 4);
        string Job(string extra) => $"""
            model: {model}
            dataset: {dataset}
            max_steps: 1
            per_device_train_batch_size: 2
            max_length: 32
            max_prompt_length: 16
            {extra}
            """;
        var yaml = Path.Combine(dir.Path, "run.yaml");
        File.WriteAllText(yaml, Job("""
            reference_free: true
            beta: 0.25
            chosen_column: chosen
            loss_type: [sigmoid, sft]
            lr_scheduler_type: constant_with_warmup
            report_to: [jsonl]
            rpo_alpha: 0.5
            save_total_limit: null
            """));

        // From YAML alone: the booleans apply (reference_free: true used to train with a reference and save false), and
        // disable_dropout, not given anywhere, keeps its default true (it used to be recorded false).
        var (o, text, stdout) = TrainOneStep(dir.Path, "yaml", ["--config", yaml]);
        Assert.True(o.ReferenceFree);
        Assert.True(o.DisableDropout);
        Assert.Equal((0.25, 0.5), (o.Beta, o.RpoAlpha));
        Assert.Equal(["sigmoid", "sft"], o.LossType);
        Assert.Equal([ReportTarget.Jsonl], o.ReportTo);
        Assert.Null(o.SaveTotalLimit);
        Assert.Contains("reference_free: true\n", text);
        Assert.Contains("disable_dropout: true\n", text);
        Assert.Contains("lr_scheduler_type: constant_with_warmup\n", text);
        Assert.Contains("eval_strategy: no\n", text);
        Assert.Contains("report_to: [jsonl]\n", text);
        Assert.Contains("padding_free: false\n", text);
        Assert.Contains("prefix_sharing: true\n", text);
        Assert.Contains("β 0.25", stdout);

        // The same from JSON, with flags (kebab-case and TRL's snake_case) overriding some values.
        var json = Path.Combine(dir.Path, "run.json");
        File.WriteAllText(json, $$"""
            { "model": "{{model}}", "dataset": "{{dataset}}", "max_steps": 1, "per_device_train_batch_size": 2, "max_length": 32,
              "max_prompt_length": 16, "reference_free": true, "disable_dropout": false, "beta": 0.25, "loss_type": ["sigmoid", "sft"],
              "lr_scheduler_type": "constant_with_warmup", "report_to": ["jsonl"], "rpo_alpha": 0.5 }
            """);
        (o, text, stdout) = TrainOneStep(dir.Path, "json", ["--config", json, "--beta", "0.125", "--loss_type", "ipo", "--learning_rate", "2e-6", "--disable-dropout", "--rpo-alpha", "null"]);
        Assert.Equal((0.125, 2e-6), (o.Beta, o.LearningRate));
        Assert.Equal(["ipo"], o.LossType);
        Assert.True(o.DisableDropout);
        Assert.Null(o.RpoAlpha);
        Assert.True(o.ReferenceFree);                                                   // from the file
        Assert.Equal(LrSchedulerType.ConstantWithWarmup, o.LrSchedulerType);          // from the file
        Assert.Contains("β 0.125", stdout);
        Assert.Contains("loss ipo", stdout);

        // A flag turns a file's boolean off.
        (o, _, _) = TrainOneStep(dir.Path, "off", ["--config", yaml, "--reference-free", "false", "--disable_dropout=false"]);
        Assert.False(o.ReferenceFree);
        Assert.False(o.DisableDropout);
    }

    [Fact]
    public void DisableDropoutIsRecordedTrueByDefault()
    {
        Assert.Contains("disable_dropout: true\n", OptionBinder.ToYaml(new DpoOptions()));
        Assert.Contains("disable_dropout: true\n", OptionBinder.ToYaml(new SftOptions()));
        Assert.True(OptionBinder.FromYaml<DpoOptions>("beta: 0.2\n").DisableDropout);
    }
}

/// <summary>The flags of the real commands: only the options typed count, for every option of train and sft.</summary>
public class TrainingOptionFlagsTests
{
    private static (System.CommandLine.Command Cmd, DpoSharp.Cli.Commands.TrainingOptionFlags<T> Flags) Command<T>()
        where T : TrainingOptions, new()
    {
        var cmd = new System.CommandLine.Command("train");
        return (cmd, new DpoSharp.Cli.Commands.TrainingOptionFlags<T>(cmd, "config"));
    }

    [Fact]
    public void NoFlagTypedMeansNoOverride()
    {
        var (cmd, flags) = Command<DpoOptions>();
        Assert.Empty(flags.GivenFlags(cmd.Parse([])));
        var (sftCmd, sftFlags) = Command<SftOptions>();
        Assert.Empty(sftFlags.GivenFlags(sftCmd.Parse([])));
    }

    [Fact]
    public void EachOptionTypedIsTheOnlyOverrideInEitherSpelling()
    {
        foreach (var info in OptionBinder.Options<DpoOptions>().Concat(OptionBinder.Options<SftOptions>()))
        {
            foreach (var spelling in new[] { info.Flag, "--" + info.Name })
            {
                var sft = OptionBinder.Options<SftOptions>().Contains(info) && !OptionBinder.Options<DpoOptions>().Contains(info);
                var value = info.Type == typeof(bool) || info.Type == typeof(bool?) ? (info.Default == "true" ? "false" : "true") : "x";
                var args = new[] { spelling, value };
                var given = sft
                    ? Given<SftOptions>(args)
                    : Given<DpoOptions>(args);
                Assert.Equal([new KeyValuePair<string, string?>(info.Name, value)], given);
            }
        }

        static IReadOnlyList<KeyValuePair<string, string?>> Given<T>(string[] args)
            where T : TrainingOptions, new()
        {
            var (cmd, flags) = Command<T>();
            return flags.GivenFlags(cmd.Parse(args));
        }
    }

    [Fact]
    public void ABareBooleanFlagIsTrue()
    {
        var (cmd, flags) = Command<DpoOptions>();
        Assert.Equal([new KeyValuePair<string, string?>("resume", "true"), new("use_weighting", "true")], flags.GivenFlags(cmd.Parse(["--resume", "--use_weighting"])).OrderBy(f => f.Key));
    }
}
