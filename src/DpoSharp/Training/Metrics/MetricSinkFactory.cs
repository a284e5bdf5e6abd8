namespace DpoSharp.Training.Metrics;

/// <summary>What a metric-sink factory is given when a run starts.</summary>
/// <param name="OutputDir">The run's <c>output_dir</c>; the sink writes under it (e.g. <c>charts/</c>).</param>
/// <param name="ResumeStep">The step the run resumes from; null for a fresh run.</param>
/// <param name="PreviousRecords">
/// On resume, the metrics.jsonl records up to <paramref name="ResumeStep"/> (so charts can include earlier steps);
/// empty otherwise.
/// </param>
public sealed record MetricSinkContext(string OutputDir, long? ResumeStep, IReadOnlyList<MetricRecord> PreviousRecords);

/// <summary>
/// Creates a sink for a run (e.g. PNG charts from DpoSharp.Charts), for a <c>report_to</c> target beyond the
/// built-in <c>jsonl</c> and <c>tensorboard</c> ones; see <see cref="CompositeMetricSink.FromOptions"/>.
/// </summary>
/// <param name="context">The run's output directory, resume step and earlier records.</param>
public delegate IMetricSink MetricSinkFactory(MetricSinkContext context);
