using DpoSharp.Charts;
using ScottPlot;

namespace DpoSharp.Tests.Charts;

/// <summary>Point labels go to a free spot: no label over another label, a point or the line, none outside.</summary>
public class PointLabelsTests
{
    private static readonly PixelRect Area = new(50, 750, 450, 50);
    private static readonly PixelSize Label = new(100, 14);

    [Fact]
    public void TwoClosePointsGetLabelsThatDoNotOverlap()
    {
        // The README's β=0.5 and β=0.1 points: 20 px apart, both labels would go right-above.
        Pixel[] points = [new(400, 100), new(420, 115)];
        var rects = PointLabels.Place(points, [Label, Label], Area);
        AssertFree(points, rects);
        Assert.True(rects[0].Left > points[0].X && rects[0].Bottom < points[0].Y, "the first label keeps the preferred spot, right-above");
    }

    [Theory]
    [InlineData(745, 55)]    // top-right corner of the data area
    [InlineData(55, 445)]    // bottom-left
    [InlineData(745, 445)]   // bottom-right
    public void LabelsStayInsideTheDataArea(float x, float y)
    {
        var rect = Assert.Single(PointLabels.Place([new(x, y)], [Label], Area));
        Assert.True(rect.Left >= Area.Left && rect.Right <= Area.Right && rect.Top >= Area.Top && rect.Bottom <= Area.Bottom, rect.ToString());
        Assert.False(PointLabels.Contains(rect, new Pixel(x, y)));
    }

    [Fact]
    public void ALabelDoesNotCoverTheLineLeavingItsPoint()
    {
        // The line leaves the first point up and to the right, through the preferred spot.
        Pixel[] points = [new(200, 300), new(320, 180)];
        var rects = PointLabels.Place(points, [Label, Label], Area);
        AssertFree(points, rects);
        Assert.False(rects[0].Left > points[0].X && rects[0].Bottom < points[0].Y, "right-above is on the line");
    }

    [Fact]
    public void ManyCrowdedPointsStillGetDistinctSpots()
    {
        Pixel[] points = [.. Enumerable.Range(0, 5).Select(i => new Pixel(300 + (12 * i), 250 - (3 * i)))];
        var rects = PointLabels.Place(points, [.. points.Select(_ => new PixelSize(60, 14))], Area);
        for (int i = 0; i < rects.Count; i++)
        {
            for (int j = i + 1; j < rects.Count; j++)
            {
                Assert.False(PointLabels.Overlap(rects[i], rects[j]), $"labels {i} and {j} overlap");
            }
        }
    }

    [Fact]
    public void MismatchedCountsAreRefused()
    {
        Assert.Throws<ArgumentException>(() => PointLabels.Place([new(1, 1)], [], Area));
    }

    /// <summary>No two labels overlap, and no label covers a point or the straight line through the points.</summary>
    internal static void AssertFree(IReadOnlyList<Pixel> points, IReadOnlyList<PixelRect> rects)
    {
        for (int i = 0; i < rects.Count; i++)
        {
            for (int j = i + 1; j < rects.Count; j++)
            {
                Assert.False(PointLabels.Overlap(rects[i], rects[j]), $"labels {i} {rects[i]} and {j} {rects[j]} overlap");
            }

            for (int k = 0; k < points.Count; k++)
            {
                Assert.False(PointLabels.Contains(rects[i], points[k]), $"label {i} {rects[i]} covers point {k}");
            }

            for (int k = 1; k < points.Count; k++)
            {
                for (float t = 0; t <= 1; t += 0.01f)
                {
                    var p = new Pixel(points[k - 1].X + (t * (points[k].X - points[k - 1].X)), points[k - 1].Y + (t * (points[k].Y - points[k - 1].Y)));
                    Assert.False(PointLabels.Contains(rects[i], p), $"label {i} {rects[i]} covers the line at {p}");
                }
            }
        }
    }
}
