using static TorchSharp.torch;

namespace DpoSharp.Training.Metrics;

/// <summary>
/// Accumulates metric tensors on the device across micro-batches and steps, and reads them with one device→host
/// copy per logging step: every running sum is stacked and moved with a single <c>.cpu()</c>. Each metric is a mean
/// over all elements added since the last <see cref="ReadAndReset"/> (a (P) reward tensor adds P elements, a 0-d
/// loss adds one). Host-side numbers (learning rate, epoch) go through <see cref="Set"/>.
/// </summary>
public sealed class MetricsAccumulator : IDisposable
{
    private readonly Dictionary<string, (Tensor Sum, long Count)> sums = new(StringComparer.Ordinal);
    private readonly Dictionary<string, double> host = new(StringComparer.Ordinal);
    private readonly List<string> order = [];

    /// <summary>Metric names accumulated so far (device and host), in first-seen order.</summary>
    public IReadOnlyList<string> Names => order;

    /// <summary>Adds every element of <paramref name="value"/> (detached, any device) to the mean of <paramref name="name"/>.</summary>
    public void Add(string name, Tensor value)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(value);
        long n = value.numel();
        if (n == 0)
        {
            return;
        }

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var s = value.detach().to(ScalarType.Float64).sum();
        if (sums.TryGetValue(name, out var prev))
        {
            s = s.to(prev.Sum.device) + prev.Sum;
            prev.Sum.Dispose();
        }
        else
        {
            Touch(name);
        }

        sums[name] = (s.DetachFromDisposeScope(), prev.Count + n);
    }

    /// <summary>Sets a host-side value (reported as is, not averaged).</summary>
    public void Set(string name, double value)
    {
        ArgumentNullException.ThrowIfNull(name);
        Touch(name);
        host[name] = value;
    }

    /// <summary>
    /// The means of everything added since the last call (one <c>.cpu()</c> of a stacked tensor) plus the host
    /// values, each name prefixed with <paramref name="prefix"/> (e.g. <c>eval_</c>); then starts afresh.
    /// </summary>
    public IReadOnlyDictionary<string, double> ReadAndReset(string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(prefix);
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        var deviceNames = order.Where(sums.ContainsKey).ToList();
        double[] values = [];
        if (deviceNames.Count > 0)
        {
            using var scope = NewDisposeScope();
            var device = sums[deviceNames[0]].Sum.device;
            var stacked = stack(deviceNames.Select(n => sums[n].Sum.to(device)).ToArray()); // (M)
            values = [.. stacked.cpu().data<double>()];
        }

        foreach (var name in order)
        {
            if (host.TryGetValue(name, out var h))
            {
                result[prefix + name] = h;
            }
            else
            {
                int i = deviceNames.IndexOf(name);
                result[prefix + name] = values[i] / sums[name].Count;
            }
        }

        Reset();
        return result;
    }

    /// <summary>Drops everything accumulated.</summary>
    public void Reset()
    {
        foreach (var (sum, _) in sums.Values)
        {
            sum.Dispose();
        }

        sums.Clear();
        host.Clear();
        order.Clear();
    }

    /// <inheritdoc/>
    public void Dispose() => Reset();

    private void Touch(string name)
    {
        if (!order.Contains(name))
        {
            order.Add(name);
        }
    }
}
