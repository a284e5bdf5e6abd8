using System.Globalization;
using ScottPlot;

namespace DpoSharp.Charts;

/// <summary>
/// Ticks for a training-step axis: whole steps only, 1, 2 or 5 × 10ⁿ steps apart (never 12.5), as many as the
/// axis has room for.
/// </summary>
public sealed class StepTickGenerator : ITickGenerator
{
    /// <summary>The least room per tick label along the axis, in pixels.</summary>
    public const float PixelsPerTick = 70;

    /// <inheritdoc/>
    public Tick[] Ticks { get; private set; } = [];

    /// <summary>The most ticks on the axis.</summary>
    /// <value>Default 12.</value>
    public int MaxTickCount { get; set; } = 12;

    /// <inheritdoc/>
    public void Regenerate(CoordinateRange range, Edge edge, PixelLength size, Paint paint, LabelStyle labelStyle)
    {
        int room = (int)(size.Length / PixelsPerTick);
        int count = Math.Clamp(room, 2, Math.Max(2, MaxTickCount));
        Ticks = [.. Positions(range.Min, range.Max, count).Select(p => Tick.Major(p, p.ToString(CultureInfo.InvariantCulture)))];
    }

    /// <summary>The whole-number tick positions in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    /// <param name="min">One end of the visible range.</param>
    /// <param name="max">The other end.</param>
    /// <param name="maxTicks">The most ticks wanted (at least 1).</param>
    /// <returns>Ascending multiples of <see cref="Spacing"/>; empty for a non-finite range.</returns>
    public static IReadOnlyList<long> Positions(double min, double max, int maxTicks)
    {
        if (!double.IsFinite(min) || !double.IsFinite(max))
        {
            return [];
        }

        (min, max) = (Math.Min(min, max), Math.Max(min, max));
        long spacing = Spacing(max - min, maxTicks);
        var ticks = new List<long>();
        for (double t = Math.Ceiling(min / spacing) * spacing; t <= max; t += spacing)
        {
            ticks.Add((long)t);
        }

        return ticks;
    }

    /// <summary>
    /// The tick spacing for a range of <paramref name="span"/> steps: the smallest of 1, 2, 5, 10, 20, 50, … that
    /// puts at most <paramref name="maxTicks"/> ticks in any range of that length.
    /// </summary>
    /// <param name="span">The length of the visible range, in steps.</param>
    /// <param name="maxTicks">The most ticks wanted (at least 1).</param>
    /// <returns>A whole number of steps, at least 1.</returns>
    public static long Spacing(double span, int maxTicks)
    {
        // A range of length span holds at most floor(span / s) + 1 multiples of s.
        double intervals = Math.Max(1, maxTicks) - 1;
        for (long magnitude = 1; magnitude <= 1_000_000_000_000_000; magnitude *= 10)
        {
            foreach (long m in (ReadOnlySpan<long>)[1, 2, 5])
            {
                if (Math.Floor(Math.Abs(span) / (m * magnitude)) <= intervals)
                {
                    return m * magnitude;
                }
            }
        }

        return 1_000_000_000_000_000_000;
    }
}
