using DpoSharp.Cli.Options;
using DpoSharp.Losses;
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
        Assert.Equal(LrSchedulerType.Linear, o.LrSchedulerType);
        Assert.Equal(EvalStrategy.No, o.EvalStrategy);
        Assert.Equal([ReportTarget.All], o.ReportTo);
        Assert.Equal(10, o.LoggingSteps);
        Assert.True(o.DisableDropout);
        o.Validate();
        Assert.Equal([ReportTarget.Jsonl, ReportTarget.Tensorboard, ReportTarget.Png, ReportTarget.Console], o.EffectiveReportTo);
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
        // Options with a fixed set of values (enums) fail when the text is bound; the others when validated.
        var o = new DpoOptions();
        var ex = Assert.Throws<DpoSharpException>(() =>
        {
            OptionBinder.Apply(o, key, value);
            o.Validate();
        });
        Assert.Contains(fragment, ex.Message);
    }

    [Theory]
    [InlineData("eval_strategy", "step", "Did you mean steps?")]
    [InlineData("lr_scheduler_type", "cosin", "Did you mean cosine?")]
    [InlineData("truncation_mode", "keep-ends", "Did you mean keep_end?")]
    [InlineData("report_to", "jsonl,tensorbord", "Did you mean tensorboard?")]
    public void FixedValueTyposFailWhenBoundWithASuggestion(string key, string value, string suggestion)
    {
        var ex = Assert.Throws<DpoSharpException>(() => OptionBinder.Apply(new DpoOptions(), key, value));
        Assert.Contains($"{key} '", ex.Message);
        Assert.Contains(suggestion, ex.Message);
    }

    [Fact]
    public void FixedValuesAreEnumsBoundFromTrlSpellings()
    {
        var o = new DpoOptions();
        OptionBinder.Apply(o, "eval_strategy", "steps");
        OptionBinder.Apply(o, "lr_scheduler_type", "constant_with_warmup");
        OptionBinder.Apply(o, "truncation_mode", "keep_start");
        OptionBinder.Apply(o, "report_to", "jsonl,png");
        Assert.Equal(
            (EvalStrategy.Steps, LrSchedulerType.ConstantWithWarmup, DpoSharp.Data.TruncationMode.KeepStart),
            (o.EvalStrategy, o.LrSchedulerType, o.TruncationMode));
        Assert.Equal([ReportTarget.Jsonl, ReportTarget.Png], o.ReportTo);
        Assert.Equal(("steps", "constant_with_warmup", "keep_start", "jsonl,png"), (OptionBinder.Get(o, "eval_strategy"), OptionBinder.Get(o, "lr_scheduler_type"), OptionBinder.Get(o, "truncation_mode"), OptionBinder.Get(o, "report_to")));
        o.Validate();

        // Values set from C# outside the enum are still rejected, naming the option.
        Assert.Contains("eval_strategy", Assert.Throws<DpoSharpException>(new DpoOptions { EvalStrategy = (EvalStrategy)9 }.Validate).Message);
        Assert.Contains("lr_scheduler_type", Assert.Throws<DpoSharpException>(new DpoOptions { LrSchedulerType = (LrSchedulerType)9 }.Validate).Message);
        Assert.Contains("truncation_mode", Assert.Throws<DpoSharpException>(new DpoOptions { TruncationMode = (DpoSharp.Data.TruncationMode)9 }.Validate).Message);
        Assert.Contains("report_to", Assert.Throws<DpoSharpException>(new DpoOptions { ReportTo = [(ReportTarget)9] }.Validate).Message);
    }

    [Fact]
    public void LossTypesAreConstantsCheckedAgainstTheRegistry()
    {
        Assert.Equal(LossTypes.Sigmoid, new DpoOptions().LossType.Single());
        Assert.Equal(LossTypes.Sigmoid, new DpoSharp.Losses.SigmoidLoss(new LossOptions()).Name);
        Assert.All(typeof(LossTypes).GetFields().Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!), n => Assert.True(PreferenceLosses.IsKnown(n), n));
        Assert.Equal(
            typeof(LossTypes).GetFields().Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!).Order(),
            PreferenceLosses.Names.Order());

        // TRL's "dpo" is sigmoid; another typo gets the closest registered names.
        var dpo = Assert.Throws<DpoSharpException>(new DpoOptions { LossType = ["dpo"] }.Validate).Message;
        Assert.Contains("Did you mean sigmoid?", dpo);
        Assert.DoesNotContain("ipo?", dpo);
        Assert.Contains("Did you mean hinge?", Assert.Throws<DpoSharpException>(new DpoOptions { LossType = ["hinje"] }.Validate).Message);
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
        var o = new DpoOptions { PromptColumn = "question", ChosenColumn = "prefered_response", RejectedColumn = "disprefered_response", DatasetTrainSplit = "train", MaxLength = 256, MaxPromptLength = 128, MaxCompletionLength = 64, TruncationMode = DpoSharp.Data.TruncationMode.KeepStart };
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
    public void FlatPropertiesAreTheConcerns()
    {
        var o = new DpoOptions { LearningRate = 1e-5, PerDeviceTrainBatchSize = 4, OutputDir = "x", MaxSteps = 7, LoggingSteps = 3, MaxLength = 99, Beta = 0.2 };
        Assert.Equal((1e-5, 4, "x", 7, 3, (int?)99, 0.2), (o.Optimizer.LearningRate, o.Batching.PerDeviceTrainBatchSize, o.Checkpointing.OutputDir, o.Schedule.MaxSteps, o.Logging.LoggingSteps, o.Data.MaxLength, o.Objective.Beta));
        o.Objective.LossType = ["ipo"];
        o.Logging.ReportTo = [ReportTarget.None];
        o.Data.TruncationMode = DpoSharp.Data.TruncationMode.KeepStart;
        Assert.Equal(["ipo"], o.LossType);
        Assert.Empty(o.EffectiveReportTo);
        Assert.Equal(DpoSharp.Data.TruncationMode.KeepStart, o.ToTokenizationOptions().TruncationMode);
        Assert.Equal(["no", "steps", "epoch"], OptionValues.Names<EvalStrategy>());
        Assert.Equal(["constant", "constant_with_warmup", "linear", "cosine"], OptionValues.Names<LrSchedulerType>());
        Assert.Equal(["keep_start", "keep_end"], OptionValues.Names<DpoSharp.Data.TruncationMode>());
        Assert.Equal(["jsonl", "tensorboard", "png", "console", "all", "none"], OptionValues.Names<ReportTarget>());
    }

    [Fact]
    public void CloneIsDeep()
    {
        var o = new DpoOptions { Model = "m", RefModel = "r", Seed = 7, LearningRate = 1e-5, OutputDir = "x", MaxLength = 99, LossType = ["ipo", "sft"], LossWeights = [1, 2], ReportTo = [ReportTarget.Jsonl] };
        var c = o.Clone();
        Assert.Equal(OptionBinder.ToYaml(o), OptionBinder.ToYaml(c));
        c.LossType.Add("hinge");
        c.LossWeights!.Add(3);
        c.ReportTo.Add(ReportTarget.Png);
        c.LearningRate = 2e-5;
        c.MaxLength = 5;
        c.OutputDir = "y";
        Assert.Equal((1e-5, (int?)99, "x"), (o.LearningRate, o.MaxLength, o.OutputDir));
        Assert.Equal(["ipo", "sft"], o.LossType);
        Assert.Equal([1.0, 2.0], o.LossWeights!);
        Assert.Equal([ReportTarget.Jsonl], o.ReportTo);
        Assert.NotSame(o.Optimizer, c.Optimizer);
        Assert.NotSame(o.Data, c.Data);
    }
}
