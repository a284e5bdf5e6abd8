namespace DpoSharp;

/// <summary>Finds names close to a misspelt one (edit distance), for "did you mean" hints in error messages.</summary>
public static class NameSuggestions
{
    /// <summary>Candidates within a small edit distance of <paramref name="name"/> (case-insensitive, '-' = '_'), best first.</summary>
    public static IReadOnlyList<string> Closest(string name, IEnumerable<string> candidates, int max = 3)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(candidates);
        var n = Normalize(name);
        int limit = Math.Max(2, n.Length / 3);
        return [.. candidates
            .Select(c => (Name: c, Distance: Distance(n, Normalize(c)), Contains: Normalize(c).Contains(n, StringComparison.Ordinal) || n.Contains(Normalize(c), StringComparison.Ordinal)))
            .Where(x => x.Distance <= limit || (x.Contains && n.Length >= 3))
            .OrderBy(x => x.Distance)
            .ThenBy(x => x.Name, StringComparer.Ordinal)
            .Take(max)
            .Select(x => x.Name)];
    }

    /// <summary>Levenshtein distance.</summary>
    public static int Distance(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            prev[j] = j;
        }

        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }

            (prev, cur) = (cur, prev);
        }

        return prev[b.Length];
    }

    private static string Normalize(string s) => s.Trim().ToLowerInvariant().Replace('-', '_');
}
