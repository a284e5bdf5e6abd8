using static TorchSharp.torch;

namespace DpoSharp.Training.Engine;

/// <summary>
/// Named running sums of an objective's statistics (loss, rewards, accuracies, …) and the counts they are averaged
/// over (pairs, tokens, steps). Sums stay on the device, in the dtype they are first added in, until
/// <see cref="ToMetrics(string)"/> reads them all in one device→host copy; a metric is its sum divided by its count.
/// Names keep the order they were first added in.
/// </summary>
public sealed class NamedStatistics : IDisposable
{
    private readonly List<Entry> _entries = [];
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);
    private readonly Dictionary<string, double> _counts = new(StringComparer.Ordinal);
    private readonly List<(string Name, string Minuend, string Subtrahend)> _differences = [];

    /// <summary>Statistic names, in first-added order.</summary>
    public IEnumerable<string> Names => _entries.Select(e => e.Name);

    /// <summary>Adds <paramref name="sum"/> (a 0-d tensor) to the statistic <paramref name="name"/>, averaged over
    /// the count <paramref name="per"/> (e.g. <c>pairs</c>). The addition happens on the device, without autograd.</summary>
    public void Add(string name, Tensor sum, string per)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(sum);
        ArgumentNullException.ThrowIfNull(per);
        using var noGrad = no_grad();
        if (!_index.TryGetValue(name, out int i))
        {
            i = _entries.Count;
            _index[name] = i;
            _entries.Add(new Entry(name, per, zeros([], sum.dtype, sum.device).DetachFromDisposeScope()));
        }
        else if (_entries[i].Per != per)
        {
            throw new InvalidOperationException($"statistic {name} is averaged per {_entries[i].Per}, not per {per}");
        }

        _entries[i].Sum.add_(sum);
    }

    /// <summary>
    /// Declares the metric <paramref name="name"/> = metric <paramref name="minuend"/> − metric
    /// <paramref name="subtrahend"/>, each already averaged over its own count (TRL's KTO <c>rewards/margins</c>: the
    /// mean desirable reward minus the mean undesirable reward). Declaring it again changes nothing.
    /// </summary>
    public void AddDifference(string name, string minuend, string subtrahend)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(minuend);
        ArgumentNullException.ThrowIfNull(subtrahend);
        if (!_differences.Any(d => d.Name == name))
        {
            _differences.Add((name, minuend, subtrahend));
        }
    }

    /// <summary>Adds <paramref name="count"/> to the host-side count <paramref name="name"/>.</summary>
    public void AddCount(string name, double count)
    {
        ArgumentNullException.ThrowIfNull(name);
        _counts[name] = Count(name) + count;
    }

    /// <summary>The count <paramref name="name"/> (0 when never added).</summary>
    public double Count(string name) => _counts.TryGetValue(name, out var c) ? c : 0;

    /// <summary>True when a statistic <paramref name="name"/> was added.</summary>
    public bool Contains(string name) => _index.ContainsKey(name);

    /// <summary>Adds every statistic and count of <paramref name="other"/> to this one.</summary>
    public void Add(NamedStatistics other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (var e in other._entries)
        {
            Add(e.Name, e.Sum, e.Per);
        }

        foreach (var (k, v) in other._counts)
        {
            AddCount(k, v);
        }

        foreach (var (name, a, b) in other._differences)
        {
            AddDifference(name, a, b);
        }
    }

    /// <summary>
    /// Every statistic as <c>prefix + name</c> → sum / max(1, count), read in one device→host copy together with
    /// <paramref name="alsoRead"/> (0-d tensors whose values are returned in <paramref name="alsoReadValues"/>).
    /// </summary>
    public Dictionary<string, double> ToMetrics(string prefix, IReadOnlyList<Tensor> alsoRead, out double[] alsoReadValues)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        ArgumentNullException.ThrowIfNull(alsoRead);
        var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
        var all = _entries.Select(e => e.Sum).Concat(alsoRead).ToList();
        if (all.Count == 0)
        {
            alsoReadValues = [];
            return metrics;
        }

        var values = ReadAll(all);
        for (int i = 0; i < _entries.Count; i++)
        {
            metrics[prefix + _entries[i].Name] = values[i] / Math.Max(1, Count(_entries[i].Per));
        }

        foreach (var (name, a, b) in _differences)
        {
            if (metrics.TryGetValue(prefix + a, out var x) && metrics.TryGetValue(prefix + b, out var y))
            {
                metrics[prefix + name] = x - y;
            }
        }

        alsoReadValues = values[_entries.Count..];
        return metrics;
    }

    /// <inheritdoc cref="ToMetrics(string, IReadOnlyList{Tensor}, out double[])"/>
    public Dictionary<string, double> ToMetrics(string prefix) => ToMetrics(prefix, [], out _);

    /// <summary>
    /// Replaces every sum and count with its total over the ranks of <paramref name="group"/> (one host copy and one
    /// all-reduce in double precision), so the metrics are those of the global batch. Every rank must hold the same
    /// statistics in the same order (they come from the objective's configuration, not from the data); otherwise every
    /// rank throws <see cref="InvalidOperationException"/>.
    /// </summary>
    public void SumAcrossRanks(IProcessGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        if (group.WorldSize == 1)
        {
            return;
        }

        // The same layout on every rank: all n agree iff N·Σn² = (Σn)², a decision every rank reaches alike.
        var countNames = _counts.Keys.Order(StringComparer.Ordinal).ToList();
        double n = _entries.Count + (1000.0 * countNames.Count);
        Span<double> layout = [n, n * n];
        group.SumInPlace(layout);
        if (Math.Abs((layout[1] * group.WorldSize) - (layout[0] * layout[0])) > 0.5)
        {
            throw new InvalidOperationException("the ranks hold different statistics; every rank must run the same objective with the same options.");
        }

        var values = new double[_entries.Count + countNames.Count];
        if (_entries.Count > 0)
        {
            ReadAll([.. _entries.Select(e => e.Sum)]).CopyTo(values, 0);
        }

        for (int i = 0; i < countNames.Count; i++)
        {
            values[_entries.Count + i] = _counts[countNames[i]];
        }

        group.SumInPlace(values);
        using (no_grad())
        {
            for (int i = 0; i < _entries.Count; i++)
            {
                _entries[i].Sum.fill_(values[i]);
            }
        }

        for (int i = 0; i < countNames.Count; i++)
        {
            _counts[countNames[i]] = values[_entries.Count + i];
        }
    }

    /// <summary>Sets every sum and count to zero, keeping the statistics (and their order).</summary>
    public void Reset()
    {
        using var noGrad = no_grad();
        foreach (var e in _entries)
        {
            e.Sum.zero_();
        }

        _counts.Clear();
    }

    /// <summary>Forgets every statistic and count.</summary>
    public void Clear()
    {
        foreach (var e in _entries)
        {
            e.Sum.Dispose();
        }

        _entries.Clear();
        _index.Clear();
        _counts.Clear();
        _differences.Clear();
    }

    /// <inheritdoc/>
    public void Dispose() => Clear();

    /// <summary>The values of the 0-d <paramref name="tensors"/> in one device→host copy (float32 → float64 is exact:
    /// the values are the sums' own).</summary>
    private static double[] ReadAll(IReadOnlyList<Tensor> tensors)
    {
        using var scope = NewDisposeScope();
        return cat(tensors.Select(t => t.to(ScalarType.Float64).reshape(1)).ToList()).cpu().data<double>().ToArray();
    }

    private sealed record Entry(string Name, string Per, Tensor Sum);
}
