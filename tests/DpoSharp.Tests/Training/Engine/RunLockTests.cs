using DpoSharp.Tests.Cli.Commands;
using DpoSharp.Training.Engine;

namespace DpoSharp.Tests.Training.Engine;

/// <summary>One run per output folder: a second run into a folder a run holds is refused naming the folder (CLI:
/// exit 2, before any work); the lock is an OS lock on an open handle, so a lock file a crashed run left never blocks.</summary>
public class RunLockTests
{
    [Fact]
    public void ASecondRunIntoTheSameFolderIsRefusedNamingIt()
    {
        using var dir = TestPaths.CreateTempDir();
        var (model, dataset) = CliTrainTests.WriteTinyJob(dir.Path);
        var output = Path.Combine(dir.Path, "out");
        using (RunLock.Acquire(output))
        {
            var e = Assert.Throws<DpoSharpException>(() => RunLock.Acquire(output));
            Assert.Contains($"output_dir {output} is in use by another running dposharp training run", e.Message);

            foreach (var command in new[] { "train", "sft" })
            {
                var (rc, _, err) = CliRunner.Run(command, "--model", model, "--dataset", dataset, "--output-dir", output, "--max-steps", "1", "--resume");
                Assert.True(rc == 2, $"{command}: exit {rc}\n{err}");
                Assert.Contains($"output_dir {output} is in use", err);
            }
        }

        // Released (as the OS does when the holding process ends): the folder is free again.
        using (RunLock.Acquire(output))
        {
        }
    }

    [Fact]
    public void ALockFileLeftByACrashedRunDoesNotBlock()
    {
        using var dir = TestPaths.CreateTempDir();
        File.WriteAllText(Path.Combine(dir.Path, RunLock.FileName), "left by a run that was killed");
        RunLock.ThrowIfHeld(dir.Path);
        using var held = RunLock.Acquire(dir.Path);
        Assert.Throws<DpoSharpException>(() => RunLock.ThrowIfHeld(dir.Path));
    }
}
