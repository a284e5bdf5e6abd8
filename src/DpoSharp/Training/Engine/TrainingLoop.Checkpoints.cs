using TorchSharp;

namespace DpoSharp.Training.Engine;

/// <content>Resume, checkpoints and stops on request.</content>
public sealed partial class TrainingLoop<TBatch>
{
    /// <summary>A stop on request between steps: checkpoints the last step (when it is new and files are written).</summary>
    private TrainingInterruptedException Interrupt(LrSchedule schedule, int startStep, CancellationToken cancellationToken)
    {
        _accounting!.ThrowIfNonFinite();
        string? checkpoint = null;
        if (WritesFiles && State.GlobalStep > startStep)
        {
            checkpoint = Path.Combine(Options.Checkpointing.OutputDir, $"checkpoint-{State.GlobalStep}");
            if (!Directory.Exists(checkpoint))
            {
                SnapshotObjectiveScalars();
                SaveCheckpoint(schedule);
            }
        }

        return new TrainingInterruptedException(State.GlobalStep, checkpoint, cancellationToken);
    }

    /// <summary>The checkpoint to resume from: <paramref name="explicitCheckpoint"/> (<see cref="Run"/>'s argument) or
    /// <c>resume_from_checkpoint</c>, checked against its manifest (<see cref="Checkpointer.CheckResumable"/>;
    /// <paramref name="warning"/> for one without a manifest), else with <c>resume</c> the newest checkpoint that
    /// verifies (<paramref name="skipped"/>: newer ones passed over), else null.</summary>
    private string? ResolveResumeCheckpoint(string? explicitCheckpoint, out IReadOnlyList<SkippedCheckpoint> skipped, out string? warning)
    {
        skipped = [];
        warning = null;
        if ((explicitCheckpoint ?? Options.Checkpointing.ResumeFromCheckpoint) is { } dir)
        {
            warning = Checkpointer.CheckResumable(dir);
            return dir;
        }

        if (!Options.Checkpointing.Resume)
        {
            return null;
        }

        return Checkpointer.FindLatest(Options.Checkpointing.OutputDir, out skipped)
            ?? throw new DpoSharpException($"resume: no complete checkpoint-<step> directory in {Path.GetFullPath(Options.Checkpointing.OutputDir)}; train without resume first, or point resume_from_checkpoint at a checkpoint.");
    }

    /// <summary>Reads a checkpoint's trainer state and checks that it belongs to this run's seed and data layout.</summary>
    private TrainerState ReadCheckpointState(string dir) => Checkpointer.ReadState(
        dir,
        new DataLayout(Options.Seed, Options.Batching.PerDeviceTrainBatchSize, Options.Batching.GradientAccumulationSteps, TrainCount, WorldSize));

    private void SnapshotObjectiveScalars()
    {
        var state = _objective.SaveState();
        try
        {
            if (state.Scalars.Count > 0)
            {
                State.LossState = new Dictionary<string, double>(state.Scalars);
            }
        }
        finally
        {
            state.DisposeTensors();
        }
    }

    private void SaveCheckpoint(LrSchedule schedule)
    {
        if (!WritesFiles)
        {
            return;
        }

        var objective = _objective.SaveState();
        try
        {
            var record = new CheckpointRecord(Model, TokenizerFilesSource, _optimizer!.StatesInOrder(), State, new ScheduleRecord(OptionValues.Name(schedule.Type), schedule.BaseLearningRate), objective);
            Checkpointer.Save(Options.Checkpointing.OutputDir, record);
        }
        finally
        {
            objective.DisposeTensors();
        }

        if (Options.Checkpointing.SaveTotalLimit is int limit)
        {
            Checkpointer.Rotate(Options.Checkpointing.OutputDir, limit);
        }
    }
}
