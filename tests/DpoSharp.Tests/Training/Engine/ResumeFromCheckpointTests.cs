using DpoSharp.Training;
using DpoSharp.Training.Engine;
using TorchSharp;

namespace DpoSharp.Tests.Training.Engine;

/// <summary>
/// An explicit <c>resume_from_checkpoint</c> (TRL's name; also <c>Train(dir)</c>) is verified against the
/// checkpoint's manifest as the automatic resume verifies the newest checkpoint: a file that differs is a
/// <see cref="DpoSharpException"/> (CLI: exit 2) naming the file and the previous checkpoint that verifies; a
/// checkpoint written before manifests existed resumes with a warning.
/// </summary>
[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class ResumeFromCheckpointTests
{
    private static DpoOptions Args(string output) => new()
    {
        OutputDir = output,
        LearningRate = 1e-2,
        PerDeviceTrainBatchSize = 2,
        MaxSteps = 3,
        SaveSteps = 1,
        LoggingSteps = 1,
        ReportTo = [],
        Seed = 5,
    };

    /// <summary>Trains 2 of 3 steps (checkpoint-1, checkpoint-2) into <paramref name="output"/>.</summary>
    private static void TrainTwoSteps(string output)
    {
        var args = Args(output);
        args.MaxSteps = 2;
        using var model = new TinyCausalLM(seed: 2);
        using var reference = model.Clone();
        using var trainer = new DpoTrainer(model, reference, args, TinyData.Pairs(8), padTokenId: 0);
        trainer.Train();
    }

    private static TrainOutput Resume(string output, string checkpoint, bool asArgument, Action<ResumeInfo>? onResume = null)
    {
        var args = Args(output);
        if (!asArgument)
        {
            args.ResumeFromCheckpoint = checkpoint;
        }

        using var model = new TinyCausalLM(seed: 2);
        using var reference = model.Clone();
        using var trainer = new DpoTrainer(model, reference, args, TinyData.Pairs(8), padTokenId: 0);
        if (onResume is not null)
        {
            trainer.Resuming += onResume;
        }

        return trainer.Train(asArgument ? checkpoint : null);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ACheckpointThatDoesNotVerifyIsRefusedNamingTheFileAndThePreviousCheckpoint(bool asArgument)
    {
        using var dir = TestPaths.CreateTempDir();
        var output = Path.Combine(dir.Path, "out");
        TrainTwoSteps(output);
        var two = Path.Combine(output, "checkpoint-2");
        var weights = Path.Combine(two, "optimizer.safetensors");
        var bytes = File.ReadAllBytes(weights);
        bytes[^3] ^= 0x40; // same size, other bytes: only the checksum sees it
        File.WriteAllBytes(weights, bytes);

        var e = Assert.Throws<DpoSharpException>(() => Resume(output, two, asArgument));
        Assert.Contains($"resume_from_checkpoint: {two} does not verify against its checkpoint_manifest.json: optimizer.safetensors does not match its SHA-256", e.Message);
        Assert.Contains($"Resume from the previous checkpoint instead: --resume-from-checkpoint {Path.Combine(output, "checkpoint-1")}", e.Message);

        // The suggested checkpoint resumes.
        Assert.Equal(3, Resume(output, Path.Combine(output, "checkpoint-1"), asArgument).GlobalStep);
    }

    [Fact]
    public void ACheckpointWithAMissingFileOrNoEarlierCheckpointSaysSo()
    {
        using var dir = TestPaths.CreateTempDir();
        var output = Path.Combine(dir.Path, "out");
        TrainTwoSteps(output);
        var one = Path.Combine(output, "checkpoint-1");
        File.Delete(Path.Combine(one, "rng_state.safetensors"));
        var e = Assert.Throws<DpoSharpException>(() => Resume(output, one, asArgument: false));
        Assert.Contains("rng_state.safetensors is missing", e.Message);
        Assert.Contains("No earlier checkpoint next to it verifies", e.Message);

        var missing = Path.Combine(output, "checkpoint-9");
        e = Assert.Throws<DpoSharpException>(() => Resume(output, missing, asArgument: false));
        Assert.Contains($"resume_from_checkpoint: {missing} does not exist", e.Message);
        Assert.Contains("--resume-from-checkpoint " + Path.Combine(output, "checkpoint-2"), e.Message);
    }

    [Fact]
    public void ACheckpointWithoutAManifestResumesWithAWarning()
    {
        using var dir = TestPaths.CreateTempDir();
        var output = Path.Combine(dir.Path, "out");
        TrainTwoSteps(output);
        var two = Path.Combine(output, "checkpoint-2");
        File.Delete(Path.Combine(two, Checkpointer.ManifestFile)); // as written before checkpoints carried one

        ResumeInfo? info = null;
        Assert.Equal(3, Resume(output, two, asArgument: false, i => info = i).GlobalStep);
        Assert.NotNull(info);
        Assert.Equal(2, info.Step);
        Assert.Contains("has no checkpoint_manifest.json", info.Warning);
        Assert.Contains("warning: " + info.Warning, DpoSharp.Cli.Terminal.ResumeMessages.Resuming(info, output));
    }

    [Fact]
    public void TheCliExitsWith2NamingTheFileThatDiffers()
    {
        using var dir = TestPaths.CreateTempDir();
        var (model, dataset) = DpoSharp.Tests.Cli.Commands.CliTrainTests.WriteTinyJob(dir.Path);
        var output = Path.Combine(dir.Path, "out");
        string[] args = ["train", "--model", model, "--dataset", dataset, "--output-dir", output, "--device", "cpu", "--per-device-train-batch-size", "4",
            "--max-steps", "2", "--save-steps", "1", "--max-length", "32", "--max-prompt-length", "16", "--report-to", "none"];
        var (rc, stdout, err) = CliRunner.Run(args);
        Assert.True(rc == 0, err + stdout);
        var state = Path.Combine(output, "checkpoint-2", Checkpointer.TrainerStateFile);
        File.AppendAllText(state, " ");

        (rc, _, err) = CliRunner.Run([.. args, "--resume-from-checkpoint", Path.Combine(output, "checkpoint-2")]);
        Assert.Equal(2, rc);
        Assert.Contains("trainer_state.json has", err);
        Assert.Contains("--resume-from-checkpoint " + Path.Combine(output, "checkpoint-1"), err);
    }
}
