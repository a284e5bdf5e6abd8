using ScottPlot;

namespace DpoSharp.Charts;

/// <summary>
/// Places text labels beside the points of a line so that no label covers another label, a point, the line between
/// the points, or leaves the data area (as far as the room allows).
/// </summary>
public static class PointLabels
{
    /// <summary>Pixels between a point and its label.</summary>
    public const float Gap = 8;

    /// <summary>
    /// One rectangle per label, beside its point: the first free spot among right-above, right-below, left-above,
    /// left-below, above, below, right and left of the point, then the same one row further out; when none is free,
    /// the one that covers the least.
    /// </summary>
    /// <param name="points">The points' pixel positions, in the order the line joins them.</param>
    /// <param name="sizes">Each point's label size in pixels.</param>
    /// <param name="area">Where the labels must stay: the data area.</param>
    /// <returns>The labels' rectangles, in the order of <paramref name="points"/>.</returns>
    public static IReadOnlyList<PixelRect> Place(IReadOnlyList<Pixel> points, IReadOnlyList<PixelSize> sizes, PixelRect area)
    {
        ArgumentNullException.ThrowIfNull(points);
        ArgumentNullException.ThrowIfNull(sizes);
        if (points.Count != sizes.Count)
        {
            throw new ArgumentException($"{points.Count} points but {sizes.Count} label sizes", nameof(sizes));
        }

        var data = LineSamples(points);
        var placed = new List<PixelRect>();
        for (int i = 0; i < points.Count; i++)
        {
            var best = Candidates(points[i], sizes[i])
                .Select((rect, order) => (Rect: rect, Order: order, Cost: Cost(rect, area, placed, data)))
                .OrderBy(c => c.Cost)
                .ThenBy(c => c.Order)
                .First();
            placed.Add(best.Rect);
        }

        return placed;
    }

    /// <summary>True when <paramref name="a"/> and <paramref name="b"/> share some area.</summary>
    public static bool Overlap(PixelRect a, PixelRect b) => OverlapArea(a, b) > 0;

    /// <summary>True when <paramref name="p"/> lies in <paramref name="rect"/> (edges included).</summary>
    public static bool Contains(PixelRect rect, Pixel p) => p.X >= rect.Left && p.X <= rect.Right && p.Y >= rect.Top && p.Y <= rect.Bottom;

    private static IEnumerable<PixelRect> Candidates(Pixel p, PixelSize size)
    {
        float w = size.Width, h = size.Height;
        foreach (float gap in new[] { Gap, Gap + h + 4 })   // beside the point, then one row further out
        {
            (float Left, float Top)[] corners =
            [
                (p.X + gap, p.Y - gap - h),       // right, above
                (p.X + gap, p.Y + gap),           // right, below
                (p.X - gap - w, p.Y - gap - h),   // left, above
                (p.X - gap - w, p.Y + gap),       // left, below
                (p.X - (w / 2), p.Y - gap - h),   // above
                (p.X - (w / 2), p.Y + gap),       // below
                (p.X + gap, p.Y - (h / 2)),       // right
                (p.X - gap - w, p.Y - (h / 2)),   // left
            ];
            foreach (var (left, top) in corners)
            {
                yield return new PixelRect(left, left + w, top + h, top);
            }
        }
    }

    /// <summary>The points, and samples every 2 pixels along the line between them: what a label must not cover.</summary>
    private static List<Pixel> LineSamples(IReadOnlyList<Pixel> points)
    {
        var samples = new List<Pixel>(points);
        for (int i = 1; i < points.Count; i++)
        {
            var (a, b) = (points[i - 1], points[i]);
            float length = MathF.Sqrt(((b.X - a.X) * (b.X - a.X)) + ((b.Y - a.Y) * (b.Y - a.Y)));
            int n = (int)(length / 2);
            for (int k = 1; k < n; k++)
            {
                float t = k / (float)n;
                samples.Add(new Pixel(a.X + (t * (b.X - a.X)), a.Y + (t * (b.Y - a.Y))));
            }
        }

        return samples;
    }

    private static double Cost(PixelRect rect, PixelRect area, List<PixelRect> placed, List<Pixel> data)
    {
        double inside = OverlapArea(rect, area);
        double outside = (rect.Width * rect.Height) - inside;
        double labels = placed.Sum(other => OverlapArea(rect, other));
        var margin = new PixelRect(rect.Left - 3, rect.Right + 3, rect.Bottom + 3, rect.Top - 3);   // markers have a radius
        double covered = data.Count(p => Contains(margin, p));
        return (10 * outside) + (10 * labels) + (20 * covered);
    }

    private static double OverlapArea(PixelRect a, PixelRect b)
    {
        double w = Math.Min(a.Right, b.Right) - Math.Max(a.Left, b.Left);
        double h = Math.Min(a.Bottom, b.Bottom) - Math.Max(a.Top, b.Top);
        return w > 0 && h > 0 ? w * h : 0;
    }
}
