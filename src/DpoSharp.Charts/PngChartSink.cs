using DpoSharp.Training.Metrics;

namespace DpoSharp.Charts;

/// <summary>A sink that keeps the logged metrics and draws the PNG charts on <see cref="Close"/>.</summary>
/// <param name="outputDir">Where the PNGs go.</param>
/// <param name="previous">Records of earlier steps (e.g. read from metrics.jsonl when resuming).</param>
public sealed class PngChartSink(string outputDir, IEnumerable<MetricRecord>? previous = null) : IMetricSink
{
    private readonly List<MetricRecord> records = [.. previous ?? []];
    private bool closed;

    /// <summary>
    /// The <c>report_to: png</c> sink for a trainer's <c>MetricSinkFactories</c> (key <c>"png"</c>): charts in
    /// <c>output_dir/charts</c>, including the earlier steps' records when the run resumes.
    /// </summary>
    public static MetricSinkFactory Factory { get; } = context =>
    {
        ArgumentNullException.ThrowIfNull(context);
        return new PngChartSink(Path.Combine(context.OutputDir, "charts"), context.PreviousRecords);
    };

    /// <summary>The charts written by <see cref="Close"/>.</summary>
    public IReadOnlyList<string> Written { get; private set; } = [];

    /// <inheritdoc/>
    public void Log(long step, IReadOnlyDictionary<string, double> metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        ObjectDisposedException.ThrowIf(closed, this);
        records.Add(new MetricRecord(step, new Dictionary<string, double>(metrics)));
    }

    /// <inheritdoc/>
    public void Close()
    {
        if (closed)
        {
            return;
        }

        closed = true;
        Written = PngChartWriter.Write(records, outputDir);
    }

    /// <inheritdoc/>
    public void Dispose() => Close();
}
