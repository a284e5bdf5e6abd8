using System.Text;

namespace DpoSharp;

/// <summary>
/// The text of options whose values form a fixed set (enums such as <see cref="Training.Engine.EvalStrategy"/>): TRL's
/// snake_case spelling of the member name (<c>ConstantWithWarmup</c> ↔ <c>constant_with_warmup</c>). Config files,
/// command-line flags and saved configs use these names.
/// </summary>
public static class OptionValues
{
    /// <summary>The TRL name of <paramref name="value"/> (<c>LrSchedulerType.ConstantWithWarmup</c> → <c>constant_with_warmup</c>).</summary>
    public static string Name(Enum value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return ToSnakeCase(value.ToString());
    }

    /// <summary>Every value of <paramref name="enumType"/> by its TRL name, in declaration order.</summary>
    public static IReadOnlyList<string> Names(Type enumType)
    {
        ArgumentNullException.ThrowIfNull(enumType);
        return [.. Enum.GetValues(enumType).Cast<Enum>().Select(Name)];
    }

    /// <summary>Every value of <typeparamref name="TEnum"/> by its TRL name, in declaration order.</summary>
    public static IReadOnlyList<string> Names<TEnum>()
        where TEnum : struct, Enum => Names(typeof(TEnum));

    /// <summary>
    /// The value of <paramref name="enumType"/> that <paramref name="text"/> names (its TRL name; case and <c>-</c>/<c>_</c>
    /// do not matter). Throws <see cref="DpoSharpException"/> naming <paramref name="option"/>, the closest names and
    /// every accepted one.
    /// </summary>
    public static Enum Parse(Type enumType, string text, string option)
    {
        ArgumentNullException.ThrowIfNull(enumType);
        ArgumentNullException.ThrowIfNull(text);
        if (TryParse(enumType, text, out var value))
        {
            return value;
        }

        var names = Names(enumType);
        var close = NameSuggestions.Closest(text, names);
        var hint = close.Count > 0 ? $" Did you mean {string.Join(" or ", close)}?" : string.Empty;
        throw new DpoSharpException($"{option} '{text}' is unknown.{hint} Use {Accepted(names)}.");
    }

    /// <summary>The value of <typeparamref name="TEnum"/> that <paramref name="text"/> names; see <see cref="Parse(Type, string, string)"/>.</summary>
    public static TEnum Parse<TEnum>(string text, string option)
        where TEnum : struct, Enum => (TEnum)Parse(typeof(TEnum), text, option);

    /// <summary>True when <paramref name="text"/> names a value of <paramref name="enumType"/> (see <see cref="Parse(Type, string, string)"/>).</summary>
    public static bool TryParse(Type enumType, string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Enum? value)
    {
        ArgumentNullException.ThrowIfNull(enumType);
        ArgumentNullException.ThrowIfNull(text);
        var wanted = text.Trim().Replace('-', '_');
        foreach (var v in Enum.GetValues(enumType).Cast<Enum>())
        {
            if (string.Equals(Name(v), wanted, StringComparison.OrdinalIgnoreCase))
            {
                value = v;
                return true;
            }
        }

        value = null;
        return false;
    }

    /// <summary>Throws <see cref="DpoSharpException"/> unless <paramref name="value"/> is a named value of its enum.</summary>
    public static void RequireDefined<TEnum>(TEnum value, string option)
        where TEnum : struct, Enum
    {
        if (!Enum.IsDefined(value))
        {
            throw new DpoSharpException($"{option} {value} is not a valid value; use {Accepted(Names<TEnum>())}.");
        }
    }

    /// <summary>snake_case of a PascalCase name (<c>LearningRate</c> → <c>learning_rate</c>).</summary>
    public static string ToSnakeCase(string pascal)
    {
        ArgumentNullException.ThrowIfNull(pascal);
        var sb = new StringBuilder();
        for (int i = 0; i < pascal.Length; i++)
        {
            char c = pascal[i];
            if (char.IsUpper(c) && i > 0)
            {
                sb.Append('_');
            }

            sb.Append(char.ToLowerInvariant(c));
        }

        return sb.ToString();
    }

    private static string Accepted(IReadOnlyList<string> names) =>
        names.Count == 2 ? $"{names[0]} or {names[1]}" : "one of " + string.Join(", ", names);
}
