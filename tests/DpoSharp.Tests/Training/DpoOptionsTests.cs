using DpoSharp.Training;
using DpoSharp.Training.Engine;

namespace DpoSharp.Tests.Training;

public class DpoOptionsTests
{
    [Fact]
    public void DefaultsAreTrlsAndValid()
    {
        var o = new DpoOptions();
        Assert.Equal(0.1, o.Beta);
        Assert.Equal(1e-6, o.LearningRate);
        Assert.Equal(8, o.PerDeviceTrainBatchSize);
        Assert.Equal(1024, o.MaxLength);
        Assert.Equal(512, o.MaxPromptLength);
        Assert.Equal(["sigmoid"], o.LossType);
        Assert.Equal("linear", o.LrSchedulerType);
        Assert.Equal(10, o.LoggingSteps);
        Assert.True(o.DisableDropout);
        o.Validate();
        Assert.Equal(["jsonl", "tensorboard", "png", "console"], o.EffectiveReportTo);
    }

    [Fact]
    public void EveryOptionHasAKebabFlagAndHelp()
    {
        Assert.Contains(DpoOptions.Options, x => x.Name == "per_device_train_batch_size" && x.Flag == "--per-device-train-batch-size");
        Assert.Contains(DpoOptions.Options, x => x.Name == "f_alpha_divergence_coef" && x.Default == "1");
        Assert.Contains(DpoOptions.Options, x => x.Name == "adam_beta2" && x.Default == "0.999");
        Assert.All(DpoOptions.Options, x =>
        {
            Assert.Equal("--" + x.Name.Replace('_', '-'), x.Flag);
            Assert.False(string.IsNullOrWhiteSpace(x.Description), x.Name);
        });
        Assert.Equal(DpoOptions.Options.Count, DpoOptions.Options.Select(x => x.Name).Distinct().Count());
    }

    [Fact]
    public void LoadsYamlWithListsNullsAndNumbers()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "run.yaml");
        File.WriteAllText(path, """
            # a comment
            beta: 0.25
            learning_rate: 5e-7
            loss_type: [sigmoid, sft]
            loss_weights:
              - 1.0
              - 0.5
            max_prompt_length: null
            max_completion_length: 64
            disable_dropout: false
            report_to: jsonl, png
            output_dir: 'out dir'
            max_steps: 1e2
            """);
        var o = DpoOptions.LoadFile(path);
        Assert.Equal(0.25, o.Beta);
        Assert.Equal(5e-7, o.LearningRate);
        Assert.Equal(["sigmoid", "sft"], o.LossType);
        Assert.Equal([1.0, 0.5], o.LossWeights!);
        Assert.Null(o.MaxPromptLength);
        Assert.Equal(64, o.MaxCompletionLength);
        Assert.False(o.DisableDropout);
        Assert.Equal(["jsonl", "png"], o.ReportTo);
        Assert.Equal("out dir", o.OutputDir);
        Assert.Equal(100, o.MaxSteps);
        o.Validate();
    }

    [Fact]
    public void LoadsJson()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "run.json");
        File.WriteAllText(path, """{ "beta": 0.5, "loss_type": ["ipo"], "reference_free": true, "eval_steps": null, "per_device_train_batch_size": 2, "device": "cpu" }""");
        var o = DpoOptions.LoadFile(path);
        Assert.Equal(0.5, o.Beta);
        Assert.Equal(["ipo"], o.LossType);
        Assert.True(o.ReferenceFree);
        Assert.Null(o.EvalSteps);
        Assert.Equal(2, o.PerDeviceTrainBatchSize);
        Assert.Equal("cpu", o.Device);
        o.Validate();
    }

    [Fact]
    public void FlagsOverrideTheFile()
    {
        var o = DpoOptions.FromYaml("learning_rate: 1e-5\nsave_steps: 50\noutput_dir: a\n");
        o.Apply([
            new("--learning-rate", "2e-6"),
            new("max-steps", "7"),
            new("output_dir", "b"),
            new("--loss-type", "sigmoid,bco_pair"),
            new("--resume", "true"),
            new("--ref-model", "null"),
        ]);
        Assert.Equal(2e-6, o.LearningRate);
        Assert.Equal(7, o.MaxSteps);
        Assert.Equal(50, o.SaveSteps);
        Assert.Equal("b", o.OutputDir);
        Assert.Equal(["sigmoid", "bco_pair"], o.LossType);
        Assert.True(o.Resume);
        Assert.Null(o.RefModel);
        Assert.Equal("2E-06", o.Get("learning-rate"), ignoreCase: true);
        Assert.Equal("sigmoid,bco_pair", o.Get("loss_type"));
        o.Validate();
        Assert.Equal(2, o.CreateLoss().Parts.Count);
    }

    [Fact]
    public void ParsesCommandLineFlagsOverAConfigFile()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "run.yaml");
        File.WriteAllText(path, "beta: 0.2\nmax_steps: 10\nresume: false\n");
        var flags = DpoOptions.ParseArguments(["--max-steps", "3", "--resume", "--learning-rate=5e-7", "--disable-dropout", "false", "--loss-type", "ipo,sft"]);
        Assert.Equal(["max_steps", "resume", "learning_rate", "disable_dropout", "loss_type"], flags.Select(f => f.Key));
        var o = DpoOptions.Load(path, flags);
        Assert.Equal((0.2, 3, true, 5e-7, false), (o.Beta, o.MaxSteps, o.Resume, o.LearningRate, o.DisableDropout));
        Assert.Equal(["ipo", "sft"], o.LossType);
        Assert.Contains("max_steps", Assert.Throws<DpoSharpException>(() => DpoOptions.ParseArguments(["--max-step", "3"])).Message);
        Assert.Contains("needs a value", Assert.Throws<DpoSharpException>(() => DpoOptions.ParseArguments(["--beta"])).Message);
        Assert.Contains("unexpected", Assert.Throws<DpoSharpException>(() => DpoOptions.ParseArguments(["beta"])).Message);
        Assert.Contains("beta", Assert.Throws<DpoSharpException>(() => DpoOptions.Load(null, [new("beta", "0")])).Message);
    }

    [Fact]
    public void UnknownKeysNameTheLineAndCloseNames()
    {
        var ex = Assert.Throws<DpoSharpException>(() => DpoOptions.FromYaml("beta: 0.1\nlearning_rat: 1e-6\n", "run.yaml"));
        Assert.Contains("run.yaml: line 2", ex.Message);
        Assert.Contains("learning_rate", ex.Message);
        var flag = Assert.Throws<DpoSharpException>(() => new DpoOptions().Apply("--max-step", "3"));
        Assert.Contains("max_steps", flag.Message);
        var json = Assert.Throws<DpoSharpException>(() => DpoOptions.FromJson("""{"betta": 1}""", "c.json"));
        Assert.Contains("beta", json.Message);
        Assert.Contains("c.json", json.Message);
    }

    [Theory]
    [InlineData("learning_rate", "fast", "a number")]
    [InlineData("max_steps", "1.5", "a whole number")]
    [InlineData("disable_dropout", "maybe", "true or false")]
    [InlineData("loss_weights", "1,x", "list of numbers")]
    [InlineData("beta", "null", "needs a value")]
    public void UnparsableValuesNameTheOption(string key, string value, string fragment)
    {
        var ex = Assert.Throws<DpoSharpException>(() => new DpoOptions().Apply(key, value));
        Assert.Contains(key, ex.Message);
        Assert.Contains(fragment, ex.Message);
    }

    [Fact]
    public void MalformedFilesAreReported()
    {
        using var dir = TestPaths.CreateTempDir();
        var yaml = Path.Combine(dir.Path, "bad.yaml");
        File.WriteAllText(yaml, "beta: [0.1\n");
        var yamlError = Assert.Throws<DpoSharpException>(() => DpoOptions.LoadFile(yaml)).Message;
        Assert.Contains("bad.yaml", yamlError);
        Assert.Contains("invalid YAML", yamlError);
        var json = Path.Combine(dir.Path, "bad.json");
        File.WriteAllText(json, "{ \"beta\": }");
        Assert.Contains("invalid JSON", Assert.Throws<DpoSharpException>(() => DpoOptions.LoadFile(json)).Message);
        Assert.Contains("does not exist", Assert.Throws<DpoSharpException>(() => DpoOptions.LoadFile(Path.Combine(dir.Path, "none.yaml"))).Message);
        Assert.Contains("line 2", Assert.Throws<DpoSharpException>(() => DpoOptions.FromYaml("beta: 1\nbeta: 2\n")).Message);
        Assert.Contains("one value", Assert.Throws<DpoSharpException>(() => DpoOptions.FromYaml("beta: [1, 2]\n")).Message);
    }

    [Theory]
    [InlineData("beta", "0", "beta")]
    [InlineData("beta", "-1", "beta")]
    [InlineData("learning_rate", "-1e-6", "learning_rate")]
    [InlineData("per_device_train_batch_size", "0", "per_device_train_batch_size")]
    [InlineData("per_device_eval_batch_size", "0", "per_device_eval_batch_size")]
    [InlineData("gradient_accumulation_steps", "0", "gradient_accumulation_steps")]
    [InlineData("max_length", "1", "max_length")]
    [InlineData("max_prompt_length", "1024", "max_prompt_length")]
    [InlineData("max_completion_length", "0", "max_completion_length")]
    [InlineData("truncation_mode", "keep_middle", "truncation_mode")]
    [InlineData("pad_to_multiple_of", "0", "pad_to_multiple_of")]
    [InlineData("padding_free", "true", "padding_free")]
    [InlineData("loss_type", "sigmod", "sigmoid")]
    [InlineData("loss_type", "sigmoid,sigmoid", "twice")]
    [InlineData("loss_weights", "1,2", "loss_weights")]
    [InlineData("loss_weights", "-1", "loss_weights")]
    [InlineData("label_smoothing", "0.7", "label_smoothing")]
    [InlineData("f_divergence_type", "kl", "f_divergence_type")]
    [InlineData("f_alpha_divergence_coef", "0", "f_alpha_divergence_coef")]
    [InlineData("discopop_tau", "0", "discopop_tau")]
    [InlineData("rpo_alpha", "-1", "rpo_alpha")]
    [InlineData("precompute_ref_batch_size", "0", "precompute_ref_batch_size")]
    [InlineData("num_train_epochs", "-1", "num_train_epochs")]
    [InlineData("max_steps", "0", "max_steps")]
    [InlineData("lr_scheduler_type", "polynomial", "lr_scheduler_type")]
    [InlineData("warmup_ratio", "1.5", "warmup_ratio")]
    [InlineData("warmup_steps", "-2", "warmup_steps")]
    [InlineData("weight_decay", "-0.1", "weight_decay")]
    [InlineData("adam_beta1", "1", "adam_beta1")]
    [InlineData("adam_beta2", "-0.5", "adam_beta2")]
    [InlineData("adam_epsilon", "0", "adam_epsilon")]
    [InlineData("max_grad_norm", "-1", "max_grad_norm")]
    [InlineData("seed", "-3", "seed")]
    [InlineData("device", "tpu", "device")]
    [InlineData("logging_steps", "0", "logging_steps")]
    [InlineData("save_steps", "0", "save_steps")]
    [InlineData("save_total_limit", "0", "save_total_limit")]
    [InlineData("eval_strategy", "sometimes", "eval_strategy")]
    [InlineData("eval_steps", "0", "eval_steps")]
    [InlineData("report_to", "wandb", "report_to")]
    [InlineData("report_to", "none,jsonl", "report_to")]
    public void ValidateRejectsBadValuesNamingTheOption(string key, string value, string fragment)
    {
        var o = new DpoOptions();
        o.Apply(key, value);
        var ex = Assert.Throws<DpoSharpException>(o.Validate);
        Assert.Contains(fragment, ex.Message);
    }

    [Fact]
    public void ValidateRejectsContradictions()
    {
        var robust = new DpoOptions { LossType = ["robust"], LabelSmoothing = 0.5 };
        Assert.Contains("robust", Assert.Throws<DpoSharpException>(robust.Validate).Message);
        var refFree = new DpoOptions { ReferenceFree = true, RefModel = "./ref" };
        Assert.Contains("reference_free", Assert.Throws<DpoSharpException>(refFree.Validate).Message);
        var precompute = new DpoOptions { ReferenceFree = true, PrecomputeRefLogProbs = true };
        Assert.Contains("precompute_ref_log_probs", Assert.Throws<DpoSharpException>(precompute.Validate).Message);
        var nothing = new DpoOptions { NumTrainEpochs = 0 };
        Assert.Contains("num_train_epochs", Assert.Throws<DpoSharpException>(nothing.Validate).Message);
        new DpoOptions { NumTrainEpochs = 0, MaxSteps = 5 }.Validate();
        Assert.Contains("output_dir", Assert.Throws<DpoSharpException>(new DpoOptions { OutputDir = " " }.Validate).Message);
    }

    [Fact]
    public void MapsToTheDataStreamsOptions()
    {
        var o = new DpoOptions { PromptColumn = "question", ChosenColumn = "prefered_response", RejectedColumn = "disprefered_response", DatasetTrainSplit = "train", MaxLength = 256, MaxPromptLength = 128, MaxCompletionLength = 64, TruncationMode = "keep_start" };
        var d = o.ToDatasetOptions();
        Assert.Equal(("question", "prefered_response", "disprefered_response", "system", "train"), (d.PromptColumn, d.ChosenColumn, d.RejectedColumn, d.SystemColumn, d.Split));
        Assert.Equal("test", o.ToDatasetOptions("test").Split);
        var t = o.ToTokenizationOptions();
        Assert.Equal((256, 128, 64, DpoSharp.Data.TruncationMode.KeepStart), (t.MaxLength, t.MaxPromptLength, t.MaxCompletionLength, t.TruncationMode));
        o.Validate();
        var same = new DpoOptions { ChosenColumn = "x", RejectedColumn = "x" };
        Assert.Contains("'x'", Assert.Throws<DpoSharpException>(same.Validate).Message);
    }

    [Fact]
    public void YamlRoundTrips()
    {
        var o = new DpoOptions { Beta = 0.3, LossType = ["ipo", "sft"], LossWeights = [1, 0.25], RefModel = "it's here", MaxLength = null };
        var back = DpoOptions.FromYaml(o.ToYaml());
        Assert.Equal(o.ToDictionary().Select(kv => (kv.Key, Text: back.Get(kv.Key))), back.ToDictionary().Select(kv => (kv.Key, Text: o.Get(kv.Key))));
        Assert.Equal("it's here", back.RefModel);
        Assert.Null(back.MaxLength);
        Assert.Equal([1, 0.25], back.LossWeights!);
    }

    [Fact]
    public void SampleConfigReproducesTheSeedRun()
    {
        var o = DpoOptions.LoadFile(Path.Combine(TestPaths.RepoRoot, "samples", "phi2-truthy-dpo.yaml"));
        o.Validate();
        Assert.Equal("./phi-2", o.Model);
        Assert.Equal("./truthy-dpo-v0.1", o.Dataset);
        Assert.Equal(0.1, o.Beta);
        Assert.Equal(1e-6, o.LearningRate);
        Assert.Equal(4, o.PerDeviceTrainBatchSize);
        Assert.Equal(1024, o.MaxLength);
        Assert.Equal(512, o.MaxPromptLength);
        Assert.Equal(["sigmoid"], o.LossType);
    }

    [Fact]
    public void ReadmeDocumentsEveryOptionAndLoss()
    {
        var readme = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "README.md"));
        Assert.All(DpoOptions.Options, o => Assert.Contains($"| `{o.Name}` | `{o.Flag}` | `{o.Default}` |", readme));
        Assert.All(DpoSharp.Losses.PreferenceLosses.Names, n => Assert.Contains($"| `{n}` |", readme));
    }
}
