using DpoSharp.Cli.Commands;
using DpoSharp.Cli.Options;
using DpoSharp.Training;
using static DpoSharp.Tests.TestSupport.CliRunner;

namespace DpoSharp.Tests.Cli.Commands;

/// <summary>
/// Issue 10, item 2: <c>dposharp train</c> runs the demo only with no options, or with only
/// <c>--output-dir/--seed/--device/--threads</c>; any other option without <c>--model</c>/<c>--dataset</c> (or a config
/// setting them) is exit 2 naming what is missing, and writes nothing.
/// </summary>
public class CliTrainDemoDecisionTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(true, "--output-dir", "d", "--seed", "3", "--device", "cpu")]
    [InlineData(true, "--output_dir", "d", "--seed=3")]
    [InlineData(false, "--beta", "-1")]
    [InlineData(false, "--learning-rate", "1e-5", "--output-dir", "d")]
    [InlineData(false, "--max_steps", "3")]
    [InlineData(false, "--model", "m")]
    public void OnlyTheDemoOptionsRunTheDemo(bool demo, params string[] args)
    {
        Assert.Equal(demo, TrainCommand.IsDemoRequest(null, OptionBinder.ParseArguments<DpoOptions>(args)));
        Assert.False(TrainCommand.IsDemoRequest("run.yaml", OptionBinder.ParseArguments<DpoOptions>(args)));
    }

    [Theory]
    [InlineData("--model and --dataset are not set", "--beta", "-1")]
    [InlineData("--model and --dataset are not set", "--learning-rate", "1e-5")]
    [InlineData("--model and --dataset are not set", "--reference-free")]
    [InlineData("--dataset is not set", "--model", "some-model")]
    [InlineData("--model is not set", "--dataset", "pairs.jsonl", "--beta", "-1")]
    public void OtherOptionsWithoutModelOrDatasetExit2NamingWhatIsMissingAndWriteNothing(string missing, params string[] args)
    {
        using var dir = TestPaths.CreateTempDir();
        var output = Path.Combine(dir.Path, "out");
        var (rc, stdout, err) = Run(["train", .. args, "--output-dir", output]);
        Assert.Equal(2, rc);
        Assert.Contains(missing, err);
        Assert.Contains("demo", err);
        Assert.DoesNotContain("dposharp demo", stdout);
        Assert.False(Directory.Exists(output));
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Fact]
    public void AConfigWithoutModelOrDatasetIsNotTheDemo()
    {
        using var dir = TestPaths.CreateTempDir();
        var config = Path.Combine(dir.Path, "run.yaml");
        File.WriteAllText(config, $"beta: 0.2\noutput_dir: {Path.Combine(dir.Path, "out")}\n");
        var (rc, _, err) = Run("train", "--config", config);
        Assert.Equal(2, rc);
        Assert.Contains("--model and --dataset are not set", err);
        Assert.Contains("'model:' / 'dataset:' in --config", err);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "out")));
    }

    [Fact]
    public void TheDemoOptionsReachTheDemo()
    {
        // A bad --device with only demo options fails in the demo's checks (not "--model is not set"): the demo path
        // was taken, and it wrote nothing.
        using var dir = TestPaths.CreateTempDir();
        var output = Path.Combine(dir.Path, "demo");
        var (rc, _, err) = Run("train", "--output-dir", output, "--seed", "3", "--threads", "1", "--device", "tpu");
        Assert.Equal(2, rc);
        Assert.Contains("device 'tpu'", err);
        Assert.DoesNotContain("not set", err);
        Assert.False(Directory.Exists(output));
    }
}
