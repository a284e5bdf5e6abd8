using DpoSharp.Training.Engine;

namespace DpoSharp.Training.Metrics;

/// <summary>Forwards every call to several sinks, in order.</summary>
public sealed class CompositeMetricSink(IEnumerable<IMetricSink> sinks) : IMetricSink
{
    private readonly List<IMetricSink> sinks = [.. sinks];

    /// <summary>The sinks.</summary>
    public IReadOnlyList<IMetricSink> Sinks => sinks;

    /// <summary>
    /// The file sinks <paramref name="options"/>' <c>report_to</c> selects, writing into <c>output_dir</c>:
    /// <c>jsonl</c> → <c>metrics.jsonl</c>, <c>tensorboard</c> → <c>runs/</c> (built in), then every other target
    /// (<c>png</c> → <c>charts/*.png</c> at close, from DpoSharp.Charts' <c>PngChartSink.Factory</c>) from
    /// <paramref name="factories"/>[name]. <c>console</c> is the command line's business and is skipped here. With
    /// <c>report_to: all</c> a target without a factory is skipped; one named explicitly throws
    /// <see cref="DpoSharpException"/> saying where its factory comes from. When <paramref name="resumeStep"/> is
    /// given, metrics.jsonl keeps its lines up to that step and the factories get them
    /// (<see cref="MetricSinkContext.PreviousRecords"/>), so charts include them.
    /// </summary>
    public static CompositeMetricSink FromOptions(TrainingOptions options, long? resumeStep = null, IReadOnlyDictionary<string, MetricSinkFactory>? factories = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var targets = options.EffectiveReportTo;
        var extra = targets.Where(t => t is not (ReportTarget.Jsonl or ReportTarget.Tensorboard or ReportTarget.Console)).Select(t => OptionValues.Name(t)).ToList();
        if (!options.ReportTo.Contains(ReportTarget.All) && extra.FirstOrDefault(t => factories?.ContainsKey(t) != true) is { } missing)
        {
            throw new DpoSharpException(MissingFactoryMessage(missing));
        }

        var list = new List<IMetricSink>();
        var jsonl = Path.Combine(options.OutputDir, JsonlMetricSink.FileName);
        IReadOnlyList<MetricRecord> previous = [];
        if (resumeStep is long rs && File.Exists(jsonl))
        {
            previous = [.. JsonlMetricSink.Read(jsonl).Where(r => r.Step <= rs)];
        }

        if (targets.Contains(ReportTarget.Jsonl))
        {
            list.Add(new JsonlMetricSink(jsonl, append: resumeStep is not null, keepUpToStep: resumeStep));
        }

        if (targets.Contains(ReportTarget.Tensorboard))
        {
            list.Add(new TensorBoardMetricSink(Path.Combine(options.OutputDir, "runs")));
        }

        var context = new MetricSinkContext(options.OutputDir, resumeStep, previous);
        foreach (var target in extra)
        {
            if (factories is not null && factories.TryGetValue(target, out var factory))
            {
                list.Add(factory(context));
            }
        }

        return new CompositeMetricSink(list);
    }

    private static string MissingFactoryMessage(string target) => target == OptionValues.Name(ReportTarget.Png)
        ? "report_to png draws charts with DpoSharp.Charts: reference it and add PngChartSink.Factory to the trainer's " +
          "MetricSinkFactories (key \"png\"), or leave png out of report_to."
        : $"report_to {target} has no metric-sink factory: add one to the trainer's MetricSinkFactories (key \"{target}\"), " +
          "or leave it out of report_to.";

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
