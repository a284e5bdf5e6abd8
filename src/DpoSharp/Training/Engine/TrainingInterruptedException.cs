namespace DpoSharp.Training.Engine;

/// <summary>
/// A run stopped on request (its cancellation token) after finishing an optimizer step. When the run writes files,
/// that step was checkpointed first, so <c>resume</c> continues exactly where it stopped.
/// </summary>
public sealed class TrainingInterruptedException : OperationCanceledException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="step">The last optimizer step taken.</param>
    /// <param name="checkpoint">The checkpoint holding that step, or null (nothing written: no output_dir, rank &gt; 0,
    /// or no step taken since the last checkpoint).</param>
    /// <param name="cancellationToken">The token that requested the stop.</param>
    public TrainingInterruptedException(int step, string? checkpoint, CancellationToken cancellationToken)
        : base($"training interrupted at step {step}" + (checkpoint is null ? "." : $"; checkpoint {checkpoint}."), cancellationToken)
    {
        Step = step;
        Checkpoint = checkpoint;
    }

    /// <summary>The last optimizer step taken.</summary>
    public int Step { get; }

    /// <summary>The checkpoint of <see cref="Step"/>, or null.</summary>
    public string? Checkpoint { get; }
}
