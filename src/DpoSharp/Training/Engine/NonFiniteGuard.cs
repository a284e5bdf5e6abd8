using System.Globalization;
using static TorchSharp.torch;

namespace DpoSharp.Training.Engine;

/// <summary>A training step the non-finite guard skipped: its loss or gradient norm was NaN/inf, so the optimizer
/// did not run (weights and AdamW state unchanged).</summary>
/// <param name="Step">The optimizer step (1-based) that was skipped.</param>
/// <param name="Rows">Training example indices (DPO: pair indices) of the step's micro-batches: the rows to inspect.</param>
/// <param name="Loss">The step's loss (NaN or ±inf when the loss was the cause).</param>
/// <param name="GradNorm">The step's gradient norm before clipping.</param>
/// <param name="Consecutive">Bad steps in a row, this one included.</param>
/// <param name="Total">Steps skipped so far in this run.</param>
public sealed record SkippedStep(int Step, IReadOnlyList<int> Rows, double Loss, double GradNorm, int Consecutive, int Total)
{
    /// <summary>One line for a log: the step, the values and the rows.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"step {Step}: loss {Loss}, grad_norm {GradNorm}; the step was skipped (weights and optimizer state unchanged); rows {string.Join(", ", Rows)}");
}

/// <summary>
/// The non-finite guard (<c>max_bad_steps</c>): one host read per optimizer step of the step's loss and gradient
/// norm. A NaN/inf step is skipped (the caller does not run the optimizer) and counted; more than
/// <c>max_bad_steps</c> bad steps in a row stop the run with a diagnosis naming the steps and rows.
/// </summary>
internal sealed class NonFiniteGuard(int maxBadSteps)
{
    private readonly List<SkippedStep> _run = [];

    /// <summary>Steps skipped so far in this run (the <c>skipped_steps</c> metric).</summary>
    public int Skipped { get; private set; }

    /// <summary>
    /// Null when <paramref name="stepLoss"/> and <paramref name="gradNorm"/> (0-d tensors) are finite, else the
    /// skipped step. Throws <see cref="DpoSharpException"/> when this bad step is one more than <c>max_bad_steps</c> in a row.
    /// </summary>
    public SkippedStep? Check(Tensor stepLoss, Tensor gradNorm, int step, IReadOnlyList<int[]> rows)
    {
        using var scope = NewDisposeScope();
        var values = stack([stepLoss.detach().to(ScalarType.Float64), gradNorm.detach().to(ScalarType.Float64)]).cpu().data<double>().ToArray();
        if (double.IsFinite(values[0]) && double.IsFinite(values[1]))
        {
            _run.Clear();
            return null;
        }

        Skipped++;
        var skipped = new SkippedStep(step, [.. rows.SelectMany(r => r)], values[0], values[1], _run.Count + 1, Skipped);
        _run.Add(skipped);
        if (_run.Count > maxBadSteps)
        {
            throw new DpoSharpException(
                $"the loss or gradient norm was NaN/inf in {_run.Count} consecutive step(s) (max_bad_steps {maxBadSteps}); training stopped. " +
                "No NaN/inf reached the weights: " + string.Join("; ", _run.Select(s => s.Describe())) + ". " +
                "Check those rows (empty or truncated-away completions, extreme lengths), lower learning_rate or beta, " +
                "or resume from the last checkpoint with --max-bad-steps raised.");
        }

        return skipped;
    }
}
