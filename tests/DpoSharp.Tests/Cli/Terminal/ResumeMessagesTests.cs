using DpoSharp.Cli.Terminal;
using DpoSharp.Training.Engine;

namespace DpoSharp.Tests.Cli.Terminal;

/// <summary>The continue-with command of an interrupted run and the resume notice.</summary>
public class ResumeMessagesTests
{
    [Fact]
    public void TheContinueCommandIsTheCommandLineWithResumeAddedOnce()
    {
        Assert.Equal("dposharp train --config run.yaml --max-steps 20 --resume",
            ResumeMessages.ContinueCommand(["train", "--config", "run.yaml", "--max-steps", "20"]));

        // Resume options given already are replaced, whatever their spelling.
        Assert.Equal("dposharp sft --model m --resume",
            ResumeMessages.ContinueCommand(["sft", "--resume", "--model", "m", "--resume=true"]));
        Assert.Equal("dposharp train --model m --seed 3 --resume",
            ResumeMessages.ContinueCommand(["train", "--resume", "false", "--model", "m", "--resume-from-checkpoint", "out/checkpoint-4", "--seed", "3"]));
        Assert.Equal("dposharp train --model m --resume",
            ResumeMessages.ContinueCommand(["train", "--resume_from_checkpoint=out/checkpoint-4", "--model", "m"]));

        // A run that named its checkpoint (e.g. in its config file, which --resume would not override) names the new one.
        Assert.Equal("dposharp train --config run.yaml --resume-from-checkpoint out/checkpoint-9",
            ResumeMessages.ContinueCommand(["train", "--config", "run.yaml"], "out/checkpoint-9"));

        // Words a shell would split or expand are quoted.
        Assert.Equal("dposharp train --output-dir 'my run' --dataset 'it'\\''s.jsonl' --model '$HOME/m' --resume",
            ResumeMessages.ContinueCommand(["train", "--output-dir", "my run", "--dataset", "it's.jsonl", "--model", "$HOME/m"]));
    }

    [Fact]
    public void TheInterruptedMessageNamesTheStepTheCheckpointAndTheCommand()
    {
        using var dir = TestPaths.CreateTempDir();
        var checkpoint = Path.Combine(dir.Path, "checkpoint-7");
        var lines = ResumeMessages.Interrupted(new TrainingInterruptedException(7, checkpoint, default), ["sft", "--model", "m"], "sft", null);
        Assert.Equal([$"saved {checkpoint}", "interrupted at step 7; continue with: dposharp sft --model m --resume"], lines);

        // No command line known (the C# entry point): the command is named.
        Assert.Equal("interrupted at step 7; continue with: dposharp train … --resume",
            ResumeMessages.Interrupted(new TrainingInterruptedException(7, null, default), null, "train", null).Single());

        // Stopped before any step: nothing to continue.
        Assert.Equal("interrupted before the first optimizer step; nothing was saved.",
            ResumeMessages.Interrupted(new TrainingInterruptedException(0, null, default), ["train"], "train", null).Single());
    }

    [Fact]
    public void TheResumeNoticeNamesTheCheckpointItsStepAndWhyNewerOnesWereSkipped()
    {
        using var dir = TestPaths.CreateTempDir();
        var info = new ResumeInfo(Path.Combine(dir.Path, "checkpoint-6"), 6,
            [new SkippedCheckpoint(Path.Combine(dir.Path, "checkpoint-8.tmp"), "incomplete: the run stopped while writing it (.tmp)")]);
        Assert.Equal("resuming from checkpoint-6 (step 6); skipped checkpoint-8.tmp: incomplete: the run stopped while writing it (.tmp)",
            ResumeMessages.Resuming(info, dir.Path));

        // A checkpoint outside output_dir (resume_from_checkpoint) is named by its path.
        Assert.Equal("resuming from elsewhere/checkpoint-3 (step 3)", ResumeMessages.Resuming(new ResumeInfo("elsewhere/checkpoint-3", 3, []), dir.Path));
    }
}
