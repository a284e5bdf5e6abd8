namespace DpoSharp.Data;

/// <summary>Distribution of lengths (tokens or characters): nearest-rank percentiles.</summary>
/// <param name="Count">How many values.</param>
/// <param name="Min">Smallest.</param>
/// <param name="P50">Median (nearest rank).</param>
/// <param name="P90">90th percentile (nearest rank).</param>
/// <param name="P99">99th percentile (nearest rank).</param>
/// <param name="Max">Largest.</param>
/// <param name="Mean">Arithmetic mean.</param>
public sealed record LengthSummary(int Count, int Min, int P50, int P90, int P99, int Max, double Mean)
{
    /// <summary>Summary of no values (all zero).</summary>
    public static LengthSummary Empty { get; } = new(0, 0, 0, 0, 0, 0, 0);

    /// <summary>Summarizes <paramref name="values"/>; the p-th percentile is the value at rank ceil(p/100 · n).</summary>
    public static LengthSummary From(IEnumerable<int> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return Empty;
        }

        int Rank(double p) => sorted[Math.Max(0, (int)Math.Ceiling(p / 100.0 * sorted.Length) - 1)];
        return new LengthSummary(sorted.Length, sorted[0], Rank(50), Rank(90), Rank(99), sorted[^1], sorted.Average());
    }
}
