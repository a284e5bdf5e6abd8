namespace DpoSharp.Training.Metrics;

/// <summary>Forwards every call to several sinks, in order.</summary>
public sealed class CompositeMetricSink(IEnumerable<IMetricSink> sinks) : IMetricSink
{
    private readonly List<IMetricSink> sinks = [.. sinks];

    /// <summary>The sinks.</summary>
    public IReadOnlyList<IMetricSink> Sinks => sinks;

    /// <summary>
    /// The file sinks <paramref name="options"/>' <c>report_to</c> selects, writing into <c>output_dir</c>:
    /// <c>jsonl</c> → <c>metrics.jsonl</c>, <c>tensorboard</c> → <c>runs/</c>, <c>png</c> → <c>charts/*.png</c> at close.
    /// <c>console</c> is the command line's business and is skipped here. When <paramref name="resumeStep"/> is given,
    /// metrics.jsonl keeps its lines up to that step and the charts include them.
    /// </summary>
    public static CompositeMetricSink FromOptions(DpoOptions options, long? resumeStep = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var targets = options.EffectiveReportTo;
        var list = new List<IMetricSink>();
        var jsonl = Path.Combine(options.OutputDir, JsonlMetricSink.FileName);
        IReadOnlyList<MetricRecord> previous = [];
        if (resumeStep is long rs && File.Exists(jsonl))
        {
            previous = [.. JsonlMetricSink.Read(jsonl).Where(r => r.Step <= rs)];
        }

        if (targets.Contains("jsonl"))
        {
            list.Add(new JsonlMetricSink(jsonl, append: resumeStep is not null, keepUpToStep: resumeStep));
        }

        if (targets.Contains("tensorboard"))
        {
            list.Add(new TensorBoardMetricSink(Path.Combine(options.OutputDir, "runs")));
        }

        if (targets.Contains("png"))
        {
            list.Add(new PngChartSink(Path.Combine(options.OutputDir, "charts"), previous));
        }

        return new CompositeMetricSink(list);
    }

    /// <inheritdoc/>
    public void Log(long step, IReadOnlyDictionary<string, double> metrics)
    {
        foreach (var s in sinks)
        {
            s.Log(step, metrics);
        }
    }

    /// <inheritdoc/>
    public void Close()
    {
        foreach (var s in sinks)
        {
            s.Close();
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var s in sinks)
        {
            s.Dispose();
        }
    }
}
