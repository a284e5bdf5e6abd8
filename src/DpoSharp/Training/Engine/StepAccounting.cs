using DpoSharp.Training.Metrics;
using static TorchSharp.torch;

namespace DpoSharp.Training.Engine;

/// <summary>
/// The loop's running numbers, kept on the device and read once per logging step: the logging window (the
/// objective's statistics, step losses, examples and tokens since the last log), the last gradient norm, the losses
/// of the run so far, and the non-finite guard (the first step whose loss or gradient norm was NaN/inf).
/// </summary>
internal sealed class StepAccounting : IDisposable
{
    private readonly NamedStatistics _window = new();
    private readonly Tensor _gradNorm;       // () last step's total norm
    private readonly Tensor _lossSinceStart; // () sum of step losses in this run
    private readonly Tensor _windowStepLoss; // () float64 sum of step losses since the last log
    private readonly Tensor _badStep;        // () first step with a non-finite loss/grad norm, -1 if none
    private int _windowSteps;
    private int _windowExamples;
    private long _windowTokens;

    /// <summary>Zeroed accounting on <paramref name="device"/>.</summary>
    public StepAccounting(Device device)
    {
        _gradNorm = zeros(1, device: device).squeeze().DetachFromDisposeScope();
        _lossSinceStart = zeros(1, device: device).squeeze().DetachFromDisposeScope();
        _windowStepLoss = zeros(1, dtype: ScalarType.Float64, device: device).squeeze().DetachFromDisposeScope();
        _badStep = full(1, -1L, dtype: ScalarType.Int64, device: device).squeeze().DetachFromDisposeScope();
    }

    /// <summary>Adds one micro-batch's statistics, examples and tokens to the window.</summary>
    public void AddMicroBatch(NamedStatistics statistics, int examples, long tokens)
    {
        _window.Add(statistics);
        _windowExamples += examples;
        _windowTokens += tokens;
    }

    /// <summary>Records an optimizer step's loss and gradient norm (0-d tensors); marks the step bad when either is
    /// not finite. Call under <c>no_grad</c>.</summary>
    public void EndStep(Tensor stepLoss, Tensor gradNorm, int stepNumber)
    {
        _gradNorm.copy_(gradNorm);
        var bad = stepLoss.isfinite().logical_and(gradNorm.isfinite()).logical_not().logical_and(_badStep.lt(0));
        _badStep.copy_(where(bad, tensor((long)stepNumber, device: _badStep.device), _badStep));
        _lossSinceStart.add_(stepLoss);
        _windowStepLoss.add_(stepLoss.to(ScalarType.Float64));
        _windowSteps++;
    }

    /// <summary>Sums the window's statistics over the ranks of <paramref name="group"/> (data parallelism): the
    /// examples, tokens, step losses and gradient norms are global already (reduced every step).</summary>
    public void SumWindowAcrossRanks(IProcessGroup group) => _window.SumAcrossRanks(group);

    /// <summary>
    /// The window's metrics (one device→host copy), then a fresh window. The objective's statistics come first;
    /// <paramref name="lossMetric"/> says whether <c>loss</c> is the mean step loss instead; then grad_norm and the
    /// throughput over <paramref name="windowSeconds"/> (<paramref name="examplesPerSecond"/> names the examples'
    /// one, if any). Throws when a step since the start was not finite.
    /// </summary>
    public Dictionary<string, double> Flush(TrainingLossMetric lossMetric, string? examplesPerSecond, double windowSeconds, Action<Dictionary<string, double>> addHostMetrics)
    {
        using var scope = NewDisposeScope();
        var m = _window.ToMetrics("", [_gradNorm, _badStep, _windowStepLoss], out var extra);
        ThrowIfNonFinite((long)extra[1]);
        if (lossMetric == TrainingLossMetric.MeanOfSteps)
        {
            m[MetricNames.Loss] = extra[2] / Math.Max(1, _windowSteps);
        }

        m[MetricNames.GradNorm] = extra[0];
        addHostMetrics(m);
        double secs = Math.Max(windowSeconds, 1e-9);
        if (examplesPerSecond is not null)
        {
            m[examplesPerSecond] = _windowExamples / secs;
        }

        m[MetricNames.TokensPerSecond] = _windowTokens / secs;
        _window.Reset();
        _windowStepLoss.zero_();
        _windowSteps = 0;
        _windowExamples = 0;
        _windowTokens = 0;
        return m;
    }

    /// <summary>Mean step loss over the <paramref name="steps"/> steps of this run (NaN for none).</summary>
    public double MeanLoss(int steps)
    {
        using var scope = NewDisposeScope();
        return steps > 0 ? _lossSinceStart.item<float>() / steps : double.NaN;
    }

    /// <summary>Throws when a step so far had a non-finite loss or gradient norm.</summary>
    public void ThrowIfNonFinite()
    {
        using var scope = NewDisposeScope();
        ThrowIfNonFinite(_badStep.item<long>());
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _window.Dispose();
        _gradNorm.Dispose();
        _lossSinceStart.Dispose();
        _windowStepLoss.Dispose();
        _badStep.Dispose();
    }

    private static void ThrowIfNonFinite(long bad)
    {
        if (bad >= 0)
        {
            throw new DpoSharpException(
                $"the loss or gradient norm became NaN/inf at step {bad}; training stopped and no checkpoint was written after it. " +
                "Lower learning_rate, check the data for empty completions, or resume from an earlier checkpoint.");
        }
    }
}
