namespace DpoSharp.Training.Engine;

/// <summary>
/// Where metrics go (transformers' <c>report_to</c>; config text <c>jsonl</c>, <c>tensorboard</c>, <c>png</c>,
/// <c>console</c>, <c>all</c>, <c>none</c>). <c>jsonl</c> and <c>tensorboard</c> are built into the library; <c>png</c>
/// comes from a metric-sink factory (DpoSharp.Charts' <c>PngChartSink.Factory</c>); <c>console</c> is the command
/// line's progress output.
/// </summary>
public enum ReportTarget
{
    /// <summary><c>metrics.jsonl</c> in output_dir (<c>jsonl</c>).</summary>
    Jsonl,

    /// <summary>TensorBoard event files in <c>output_dir/runs</c> (<c>tensorboard</c>).</summary>
    Tensorboard,

    /// <summary>PNG charts in <c>output_dir/charts</c>, from a registered factory (<c>png</c>).</summary>
    Png,

    /// <summary>Progress and metric lines on the console (<c>console</c>; the command line's business).</summary>
    Console,

    /// <summary>Every target above (<c>all</c>).</summary>
    All,

    /// <summary>No target (<c>none</c>); cannot be combined with others.</summary>
    None,
}
