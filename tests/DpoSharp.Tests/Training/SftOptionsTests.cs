using DpoSharp.Cli.Options;
using DpoSharp.Training;
using DpoSharp.Training.Engine;

namespace DpoSharp.Tests.Training;

/// <summary>Issue 10, item 3: <see cref="SftOptions"/> has TRL's <c>SFTConfig</c> names and defaults, and the
/// <see cref="DpoOptions"/> constructors of <see cref="SftTrainer"/> map to the same run.</summary>
public class SftOptionsTests
{
    [Fact]
    public void DefaultsAreSftConfigs()
    {
        var o = new SftOptions();
        Assert.Equal(2e-5, o.LearningRate);
        Assert.Equal(1024, o.MaxLength);
        Assert.True(o.CompletionOnlyLoss);
        Assert.Equal("text", o.DatasetTextField);
        Assert.Equal("test", o.DatasetTestSplit);
        Assert.Equal(10, o.LoggingSteps);
        Assert.Equal((8, 3.0, LrSchedulerType.Linear, "trainer_output"), (o.PerDeviceTrainBatchSize, o.NumTrainEpochs, o.LrSchedulerType, o.OutputDir));
        o.Validate();
    }

    [Theory]
    [InlineData("max_length", "1", "max_length")]
    [InlineData("dataset_text_field", "' '", "dataset_text_field")]
    [InlineData("dataset_test_split", "' '", "dataset_test_split")]
    [InlineData("learning_rate", "-1", "learning_rate")]
    public void ValidateNamesTheOption(string key, string value, string fragment)
    {
        var o = OptionBinder.FromYaml<SftOptions>($"{key}: {value}\n");
        Assert.Contains(fragment, Assert.Throws<DpoSharpException>(o.Validate).Message);
    }

    [Fact]
    public void PreferenceOptionsAreNotSftOptions()
    {
        var ex = Assert.Throws<DpoSharpException>(() => OptionBinder.FromYaml<SftOptions>("beta: 0.1\n", "run.yaml"));
        Assert.Contains("run.yaml: line 1: unknown option 'beta'", ex.Message);
        Assert.Throws<DpoSharpException>(() => OptionBinder.Apply(new SftOptions(), "--loss-type", "sigmoid"));
    }

    [Fact]
    public void FromDpoOptionsKeepsTheRunAndCloneIsDeep()
    {
        var dpo = new DpoOptions
        {
            LearningRate = 3e-3,
            MaxLength = 64,
            MaxSteps = 7,
            Seed = 5,
            OutputDir = "x",
            ReportTo = [ReportTarget.Jsonl],
            Dataset = "d",
            EvalDataset = "e",
            DatasetTestSplit = "validation",
            DisableDropout = false,
            Beta = 0.3,
        };
        var sft = SftOptions.From(dpo);
        Assert.Equal((3e-3, (int?)64, 7, 5, "x", "d", "e", "validation", false), (sft.LearningRate, sft.MaxLength, sft.MaxSteps, sft.Seed, sft.OutputDir, sft.Dataset, sft.EvalDataset, sft.DatasetTestSplit, sft.DisableDropout));
        Assert.Equal([ReportTarget.Jsonl], sft.ReportTo);
        Assert.True(sft.CompletionOnlyLoss);
        sft.ReportTo.Add(ReportTarget.Png);
        Assert.Equal([ReportTarget.Jsonl], dpo.ReportTo);

        var c = sft.Clone();
        c.MaxLength = 5;
        c.LearningRate = 1;
        Assert.Equal((3e-3, (int?)64), (sft.LearningRate, sft.MaxLength));
        Assert.NotSame(sft.Data, c.Data);
    }
}
