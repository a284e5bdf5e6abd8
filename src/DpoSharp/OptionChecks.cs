namespace DpoSharp;

/// <summary>The checks options classes validate with.</summary>
internal static class OptionChecks
{
    /// <summary>Throws <see cref="DpoSharpException"/> with <paramref name="message"/> unless <paramref name="ok"/>.</summary>
    public static void Require(bool ok, string message)
    {
        if (!ok)
        {
            throw new DpoSharpException(message);
        }
    }

    /// <summary>Neither NaN nor infinite.</summary>
    public static bool Finite(double v) => double.IsFinite(v);
}
