using System.Globalization;
using System.Text;
using System.Text.Json;

namespace DpoSharp.Training.Metrics;

/// <summary>One line of <c>metrics.jsonl</c>: the step and its metrics.</summary>
public sealed record MetricRecord(long Step, IReadOnlyDictionary<string, double> Values);

/// <summary>
/// Writes <c>metrics.jsonl</c>: one JSON object per logging step, <c>{"step": 10, "loss": 0.69, "rewards/margins": …}</c>,
/// flushed line by line so a crash loses nothing. Non-finite values are written as <c>null</c>.
/// </summary>
public sealed class JsonlMetricSink : IMetricSink
{
    /// <summary>The conventional file name.</summary>
    public const string FileName = "metrics.jsonl";

    private StreamWriter? writer;

    /// <summary>Opens (creating directories) <paramref name="path"/>.</summary>
    /// <param name="path">The file, usually <c>output_dir/metrics.jsonl</c>.</param>
    /// <param name="append">Keep existing lines (resume) instead of starting a new file.</param>
    /// <param name="keepUpToStep">When appending, first drop lines whose step is above this (a resumed run rewrites
    /// the steps after its checkpoint, so the file matches an uninterrupted run).</param>
    public JsonlMetricSink(string path, bool append = false, long? keepUpToStep = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        Path = path;
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (dir is not null)
        {
            Directory.CreateDirectory(dir);
        }

        if (append && keepUpToStep is long keep && File.Exists(path))
        {
            var kept = File.ReadAllLines(path).Where(l => !string.IsNullOrWhiteSpace(l) && StepOf(l, path) <= keep).ToList();
            File.WriteAllLines(path, kept);
        }

        writer = new StreamWriter(path, append, new UTF8Encoding(false)) { NewLine = "\n" };
    }

    /// <summary>The file written.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public void Log(long step, IReadOnlyDictionary<string, double> metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        var w = writer ?? throw new ObjectDisposedException(nameof(JsonlMetricSink));
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("step", step);
            foreach (var (k, v) in metrics)
            {
                if (k == "step")
                {
                    continue;
                }

                if (double.IsFinite(v))
                {
                    json.WriteNumber(k, v);
                }
                else
                {
                    json.WriteNull(k);
                }
            }

            json.WriteEndObject();
        }

        w.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
        w.Flush();
    }

    /// <inheritdoc/>
    public void Close()
    {
        writer?.Dispose();
        writer = null;
    }

    /// <inheritdoc/>
    public void Dispose() => Close();

    /// <summary>Reads a metrics.jsonl file (null values come back as NaN). Throws <see cref="DpoSharpException"/> naming the line on bad JSON.</summary>
    public static IReadOnlyList<MetricRecord> Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new DpoSharpException($"metrics file {path} does not exist.");
        }

        var records = new List<MetricRecord>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            try
            {
                using var doc = JsonDocument.Parse(line);
                long step = 0;
                var values = new Dictionary<string, double>(StringComparer.Ordinal);
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    if (p.Name == "step")
                    {
                        step = p.Value.GetInt64();
                    }
                    else if (p.Value.ValueKind == JsonValueKind.Number)
                    {
                        values[p.Name] = p.Value.GetDouble();
                    }
                    else if (p.Value.ValueKind == JsonValueKind.Null)
                    {
                        values[p.Name] = double.NaN;
                    }
                }

                records.Add(new MetricRecord(step, values));
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
            {
                throw new DpoSharpException($"{path}: line {lineNo}: not a metrics record ({e.Message}).", e);
            }
        }

        return records;
    }

    private static long StepOf(string line, string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.TryGetProperty("step", out var s) ? s.GetInt64() : long.MaxValue;
        }
        catch (JsonException e)
        {
            throw new DpoSharpException($"{path}: a line is not JSON ({e.Message}); remove it or start a new output_dir.", e);
        }
    }

    /// <summary>Formats a value as JSON would (invariant culture), for messages.</summary>
    internal static string Format(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
