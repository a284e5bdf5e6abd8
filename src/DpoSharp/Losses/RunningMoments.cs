using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// Running mean and variance of a stream of batches (parallel Welford merge), as TRL's <c>RunningMoments</c>: the
/// initial state is mean 0, variance 1, count 1e-24. Mean and variance stay on the device as float64 scalars, so an
/// update never synchronises; <see cref="SaveState"/> reads them.
/// </summary>
public sealed class RunningMoments : IDisposable
{
    private const double InitialCount = 1e-24;
    private Tensor? mean;
    private Tensor? var;

    /// <summary>Number of values seen (plus the initial 1e-24).</summary>
    public double Count { get; private set; } = InitialCount;

    /// <summary>The running mean as a float64 0-d tensor on the device of the last update (or CPU before any).</summary>
    public Tensor Mean => mean ?? tensor(0.0, ScalarType.Float64);

    /// <summary>Merges the values of <paramref name="xs"/> (any shape; no gradient flows).</summary>
    public void Update(Tensor xs)
    {
        ArgumentNullException.ThrowIfNull(xs);
        Tensor newMean, newVar;
        double total;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var x = xs.detach().to(ScalarType.Float64).flatten();
            double n = x.shape[0];
            var xsMean = x.mean();
            var xsVar = (x - xsMean).square().mean();                    // population variance
            var oldMean = mean ?? zeros(Array.Empty<long>(), ScalarType.Float64, x.device);
            var oldVar = var ?? ones(Array.Empty<long>(), ScalarType.Float64, x.device);
            var delta = xsMean - oldMean;
            total = Count + n;
            var oldSum = (oldVar * Count) + (delta.square() * (Count * n / total));
            newMean = (oldMean + (delta * (n / total))).MoveToOuterDisposeScope();
            newVar = ((oldSum + (xsVar * n)) / total).MoveToOuterDisposeScope();
        }

        Replace(newMean.DetachFromDisposeScope(), newVar.DetachFromDisposeScope(), total);
    }

    /// <summary>The state: <c>mean</c>, <c>var</c>, <c>count</c>.</summary>
    public IReadOnlyDictionary<string, double> SaveState() => new Dictionary<string, double>
    {
        ["mean"] = mean is null ? 0.0 : mean.cpu().item<double>(),
        ["var"] = var is null ? 1.0 : var.cpu().item<double>(),
        ["count"] = Count,
    };

    /// <summary>Restores <see cref="SaveState"/>'s output onto <paramref name="device"/> (CPU when null).</summary>
    public void LoadState(IReadOnlyDictionary<string, double> state, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        foreach (var key in new[] { "mean", "var", "count" })
        {
            if (!state.ContainsKey(key))
            {
                throw new DpoSharpException($"running moments state lacks '{key}'; the checkpoint is incomplete — resume from another checkpoint or start over.");
            }
        }

        var m = tensor(state["mean"], ScalarType.Float64, device).DetachFromDisposeScope();
        var v = tensor(state["var"], ScalarType.Float64, device).DetachFromDisposeScope();
        Replace(m, v, state["count"]);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        mean?.Dispose();
        var?.Dispose();
        mean = null;
        var = null;
    }

    private void Replace(Tensor newMean, Tensor newVar, double count)
    {
        mean?.Dispose();
        var?.Dispose();
        mean = newMean;
        var = newVar;
        Count = count;
    }
}
