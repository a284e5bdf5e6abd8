using TorchSharp;
using TorchSharp.Modules;

namespace DpoSharp.Training.Metrics;

/// <summary>
/// Writes TensorBoard event files with TorchSharp's <c>torch.utils.tensorboard.SummaryWriter</c>. Tags follow
/// transformers' TensorBoard callback: <c>train/loss</c>, <c>train/rewards/margins</c>, and <c>eval/…</c> for
/// <c>eval_</c>-prefixed metrics. View with <c>tensorboard --logdir output_dir/runs</c>.
/// </summary>
public sealed class TensorBoardMetricSink : IMetricSink
{
    private SummaryWriter? writer;

    /// <summary>Creates the event file in <paramref name="logDir"/> (created if needed; usually <c>output_dir/runs</c>).</summary>
    public TensorBoardMetricSink(string logDir)
    {
        ArgumentNullException.ThrowIfNull(logDir);
        Directory.CreateDirectory(logDir);
        LogDir = logDir;
        writer = torch.utils.tensorboard.SummaryWriter(logDir);
    }

    /// <summary>The event-file directory.</summary>
    public string LogDir { get; }

    /// <summary>The TensorBoard tag of a metric name.</summary>
    public static string TagOf(string metric)
    {
        ArgumentNullException.ThrowIfNull(metric);
        return metric.StartsWith(MetricNames.EvalPrefix, StringComparison.Ordinal)
            ? "eval/" + metric[MetricNames.EvalPrefix.Length..]
            : "train/" + metric;
    }

    /// <inheritdoc/>
    public void Log(long step, IReadOnlyDictionary<string, double> metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        var w = writer ?? throw new ObjectDisposedException(nameof(TensorBoardMetricSink));

        // Seconds since the Unix epoch, TensorBoard's wall-time unit (TorchSharp's default is DateTime ticks).
        long wall = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        int globalStep = (int)Math.Min(step, int.MaxValue);
        foreach (var (k, v) in metrics)
        {
            w.add_scalar(TagOf(k), (float)v, globalStep, wall);
        }
    }

    /// <inheritdoc/>
    public void Close() => writer = null;    // every add_scalar writes and closes the file itself

    /// <inheritdoc/>
    public void Dispose() => Close();
}
