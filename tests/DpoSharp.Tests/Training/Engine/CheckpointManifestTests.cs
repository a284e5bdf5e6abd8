using System.Security.Cryptography;
using System.Text.Json.Nodes;
using DpoSharp.Training;
using DpoSharp.Training.Engine;

namespace DpoSharp.Tests.Training.Engine;

/// <summary>
/// The checkpoint manifest: every checkpoint carries the size and SHA-256 of its files (written last); resume takes
/// the newest checkpoint that verifies and says why newer ones were passed over; save_total_limit never deletes the
/// last verified checkpoint; stale <c>.tmp</c> folders are removed.
/// </summary>
[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class CheckpointManifestTests
{
    /// <summary>A hand-made checkpoint folder: a trainer state, a weights file of <paramref name="bytes"/> bytes, a manifest.</summary>
    private static string Checkpoint(string output, int step, int bytes = 64)
    {
        var dir = Path.Combine(output, $"checkpoint-{step}");
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), [.. Enumerable.Range(0, bytes).Select(i => (byte)(i * step))]);
        Checkpointer.WriteTrainerState(Path.Combine(dir, Checkpointer.TrainerStateFile), new TrainerState { GlobalStep = step, Seed = 1 });
        Checkpointer.WriteManifest(dir);
        return dir;
    }

    private static void FlipByte(string file, int at)
    {
        var b = File.ReadAllBytes(file);
        b[at] ^= 0x10;
        File.WriteAllBytes(file, b);
    }

    [Fact]
    public void TheManifestListsEveryFileWithItsSizeAndSha256()
    {
        using var dir = TestPaths.CreateTempDir();
        var ckpt = Checkpoint(dir.Path, 3);
        var files = JsonNode.Parse(File.ReadAllText(Path.Combine(ckpt, Checkpointer.ManifestFile)))!["files"]!.AsObject();
        Assert.Equal(["model.safetensors", Checkpointer.TrainerStateFile], files.Select(f => f.Key).Order(StringComparer.Ordinal));
        var state = Path.Combine(ckpt, Checkpointer.TrainerStateFile);
        Assert.Equal(new FileInfo(state).Length, files[Checkpointer.TrainerStateFile]!["size"]!.GetValue<long>());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(state))), files[Checkpointer.TrainerStateFile]!["sha256"]!.GetValue<string>());
        Assert.Null(Checkpointer.Verify(ckpt));
    }

    [Fact]
    public void ResumeTakesTheNewestCheckpointThatVerifiesAndSaysWhyOthersWereSkipped()
    {
        using var dir = TestPaths.CreateTempDir();
        Checkpoint(dir.Path, 1);
        var two = Checkpoint(dir.Path, 2);
        var three = Checkpoint(dir.Path, 3);
        var four = Checkpoint(dir.Path, 4);
        FlipByte(Path.Combine(four, "model.safetensors"), 10);                                   // same size, other bytes
        File.WriteAllBytes(Path.Combine(three, "model.safetensors"), new byte[10]);             // truncated
        File.Delete(Path.Combine(two, Checkpointer.TrainerStateFile));                          // never completed

        var found = Checkpointer.FindLatest(dir.Path, out var skipped);
        Assert.Equal(Path.Combine(dir.Path, "checkpoint-1"), found);
        Assert.Equal([four, three, two], skipped.Select(s => s.Directory));
        Assert.Contains("model.safetensors does not match its SHA-256", skipped[0].Reason);
        Assert.Contains("model.safetensors has 10 bytes, the manifest says 64", skipped[1].Reason);
        Assert.Contains("no trainer_state.json", skipped[2].Reason);
    }

    [Fact]
    public void SaveTotalLimitNeverDeletesTheLastVerifiedCheckpoint()
    {
        using var dir = TestPaths.CreateTempDir();
        Checkpoint(dir.Path, 1);
        Checkpoint(dir.Path, 2);
        var three = Checkpoint(dir.Path, 3);
        File.Delete(Path.Combine(three, "model.safetensors"));

        Checkpointer.Rotate(dir.Path, limit: 1);
        Assert.Equal(["checkpoint-2", "checkpoint-3"], Directory.GetDirectories(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        Checkpoint(dir.Path, 4);
        Checkpointer.Rotate(dir.Path, limit: 1);
        Assert.Equal(["checkpoint-4"], Directory.GetDirectories(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void ARunWritesVerifiedCheckpointsAndRemovesStaleTemporaryFolders()
    {
        using var dir = TestPaths.CreateTempDir();
        var stale = Path.Combine(dir.Path, "checkpoint-7.tmp");
        Directory.CreateDirectory(stale);
        File.WriteAllText(Path.Combine(stale, "partial.bin"), "x");
        var args = new DpoOptions
        {
            OutputDir = dir.Path,
            LearningRate = 1e-2,
            PerDeviceTrainBatchSize = 2,
            MaxSteps = 2,
            SaveSteps = 1,
            LoggingSteps = 1,
            ReportTo = [],
            Seed = 5,
        };
        using (var model = new TinyCausalLM(seed: 2))
        using (var reference = model.Clone())
        using (var trainer = new DpoTrainer(model, reference, args, TinyData.Pairs(8), padTokenId: 0))
        {
            trainer.Train();
        }

        Assert.False(Directory.Exists(stale));
        var checkpoints = Directory.GetDirectories(dir.Path, "checkpoint-*").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["checkpoint-1", "checkpoint-2"], checkpoints.Select(Path.GetFileName));
        Assert.All(checkpoints, c => Assert.Null(Checkpointer.Verify(c)));
        Assert.All(checkpoints, c => Assert.True(File.Exists(Path.Combine(c, Checkpointer.ManifestFile))));
    }
}
