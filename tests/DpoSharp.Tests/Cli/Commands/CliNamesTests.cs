using DpoSharp.Cli;
using DpoSharp.Cli.Commands;
using TorchSharp;
using static DpoSharp.Tests.TestSupport.CliRunner;

namespace DpoSharp.Tests.Cli.Commands;

/// <summary>
/// Issue 10, item 7: TRL's snake_case spellings are aliases of every flag of <c>train</c> and <c>sft</c>; suggestions
/// point to the right thing; options that only error are not listed but still explained; <c>generate</c> and
/// <c>score</c> use <c>train</c>'s device rule.
/// </summary>
public class CliNamesTests
{
    [Theory]
    [InlineData("train", "--max-step", "Did you mean --max-steps?")]
    [InlineData("train", "--learning_rat", "Did you mean --learning-rate?")]
    [InlineData("sft", "--per-device-batch-size", "--per-device-train-batch-size")]
    [InlineData("generate", "--max-new-token", "Did you mean --max-new-tokens?")]
    [InlineData("score", "--batchsize", "Did you mean --batch-size?")]
    public void AnUnknownOptionSuggestsTheClosestOption(string command, string flag, string suggestion)
    {
        var (rc, _, err) = Run(command, flag, "3");
        Assert.Equal(DpoSharpCli.BadInputExitCode, rc);
        Assert.Contains($"unknown option '{flag}'", err);
        Assert.Contains(suggestion, err);
        Assert.DoesNotContain("'3'", err);                                      // its value is not a second error
    }

    [Fact]
    public void AnUnknownValueSuggestsTheRightOne()
    {
        var (rc, _, err) = Run("train", "--model", "m", "--dataset", "d", "--loss-type", "dpo");
        Assert.Equal(2, rc);
        Assert.Contains("loss_type 'dpo' is unknown. Did you mean sigmoid?", err);

        (rc, _, err) = Run("train", "--model", "m", "--dataset", "d", "--report-to", "tensorbord");
        Assert.Equal(2, rc);
        Assert.Contains("report_to 'tensorbord' is unknown. Did you mean tensorboard?", err);

        (rc, _, err) = Run("sft", "--model", "m", "--dataset", "d", "--eval_strategy", "step");
        Assert.Equal(2, rc);
        Assert.Contains("eval_strategy 'step' is unknown. Did you mean steps?", err);
    }

    [Fact]
    public void SnakeCaseAndKebabCaseAreTheSameOptionButNotBoth()
    {
        var (rc, _, err) = Run("train", "--model", "m", "--dataset", "d", "--learning_rate", "1e-5", "--learning-rate", "2e-5");
        Assert.Equal(2, rc);
        Assert.Contains("option --learning-rate is given twice", err);

        // Every snake_case spelling is accepted (the values here fail later, at --model).
        (rc, _, err) = Run("train", "--model", "no-such-model", "--dataset", "d", "--per_device_train_batch_size", "2",
            "--gradient_accumulation_steps", "2", "--lr_scheduler_type", "cosine", "--reference_free", "--eval_strategy", "no");
        Assert.Equal(2, rc);
        Assert.Contains("model directory no-such-model does not exist", err);
    }

    [Fact]
    public void PaddingFreeAndPrefixSharingAreListedTrainOptions()
    {
        var (_, help, _) = Run("train", "--help");
        Assert.Contains("--padding-free", help);
        Assert.Contains("--prefix-sharing", help);
        var (_, sftHelp, _) = Run("sft", "--help");
        Assert.DoesNotContain("--prefix-sharing", sftHelp);
    }

    [Theory]
    [InlineData("generate", "--model", "m", "--prompt", "p")]
    [InlineData("score", "--model", "m", "--dataset", "d", "--output", "o.jsonl")]
    public void GenerateAndScoreUseTrainsDeviceRule(params string[] args)
    {
        var parse = DpoSharpCli.Build().Parse(args);
        Assert.Empty(parse.Errors);
        Assert.Equal(DeviceOption.Auto, parse.GetValue<string>("--device"));
        var (_, help, _) = Run(args[0], "--help");
        Assert.Contains("auto (CUDA when available, else CPU)", help);
        Assert.Contains("[default: auto]", help);
    }

    [Fact]
    public void TheDeviceRuleIsAutoCudaElseCpu()
    {
        var expected = torch.cuda.is_available() ? "cuda" : "cpu";
        Assert.Equal(expected, DeviceOption.ResolveName(null));
        Assert.Equal(expected, DeviceOption.ResolveName("auto"));
        Assert.Equal(expected, DeviceOption.Resolve("auto").type.ToString().ToLowerInvariant());
        Assert.Equal("cpu", DeviceOption.ResolveName(" CPU "));
        Assert.Contains("auto, cpu, cuda or cuda:N", Assert.Throws<DpoSharpException>(() => DeviceOption.ResolveName("tpu")).Message);
        if (!torch.cuda.is_available())
        {
            Assert.Contains("CUDA is not available", Assert.Throws<DpoSharpException>(() => DeviceOption.ResolveName("cuda:0")).Message);
        }
    }
}
