using System.Globalization;
using System.Text;
using DpoSharp.Training;

namespace DpoSharp.Cli.Options;

/// <summary>
/// Binds text to training options by name, as config files and command-line flags give them: snake_case keys in
/// config files (<c>learning_rate</c>), kebab-case flags (<c>--learning-rate</c>). The options of a type are its
/// public settable properties (such as <see cref="TrainingOptions.LearningRate"/>; the concern objects such as
/// <see cref="TrainingOptions.Optimizer"/> are not options). Load with <see cref="LoadFile{T}"/>, override with
/// <see cref="Apply(TrainingOptions, string, string?)"/>, then check with <see cref="TrainingOptions.Validate"/>.
/// </summary>
public static partial class OptionBinder
{
    /// <summary>Every option of <typeparamref name="T"/>, in listing order.</summary>
    public static IReadOnlyList<OptionInfo> Options<T>()
        where T : TrainingOptions, new() => OptionTable.For(typeof(T)).Infos;

    /// <summary>
    /// Sets one option from text, as a command-line flag does. <paramref name="key"/> is the config name or flag
    /// (<c>learning_rate</c>, <c>learning-rate</c>, <c>--learning-rate</c>); lists are comma-separated; <c>null</c>
    /// clears an optional value; a bare boolean flag may pass <c>true</c>. Throws <see cref="DpoSharpException"/>
    /// naming the option for unknown names and unparsable values.
    /// </summary>
    public static void Apply(TrainingOptions options, string key, string? value)
    {
        ArgumentNullException.ThrowIfNull(options);
        ApplyCore(options, key, value is null ? null : [value], value, source: null);
    }

    /// <summary>Applies <paramref name="overrides"/> in order (flags over the file).</summary>
    public static void Apply(TrainingOptions options, IEnumerable<KeyValuePair<string, string?>> overrides)
    {
        ArgumentNullException.ThrowIfNull(overrides);
        foreach (var (k, v) in overrides)
        {
            Apply(options, k, v);
        }
    }

    /// <summary>The current value of an option as text (lists comma-separated, <c>null</c> for none).</summary>
    public static string Get(TrainingOptions options, string key)
    {
        ArgumentNullException.ThrowIfNull(options);
        var entry = OptionTable.For(options.GetType()).Find(key, null);
        return Format(entry.Property.GetValue(options));
    }

    /// <summary>The options as an ordered name → value map (for saving next to a run).</summary>
    public static IReadOnlyDictionary<string, object?> ToDictionary(TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var d = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var entry in OptionTable.For(options.GetType()).Entries)
        {
            d[entry.Info.Name] = entry.Property.GetValue(options);
        }

        return d;
    }

    /// <summary>Snake-case config name of a PascalCase property name.</summary>
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

    /// <summary>The prefix naming where a value came from, for error messages.</summary>
    internal static string Where(string? source) => source is null ? string.Empty : source + ": ";

    /// <summary>A value as option text (lists comma-separated, <c>null</c> for none).</summary>
    internal static string Format(object? value) => value switch
    {
        null => "null",
        string s => s,
        bool b => b ? "true" : "false",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IEnumerable<string> l => string.Join(",", l),
        IEnumerable<double> l => string.Join(",", l.Select(x => x.ToString("R", CultureInfo.InvariantCulture))),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };

    private static bool IsNullText(string s) => s.Trim() is "null" or "None" or "none" or "~" or "";

    private static void ApplyCore(TrainingOptions options, string key, IReadOnlyList<string>? items, string? scalar, string? source)
    {
        var (info, prop, defaultValue) = OptionTable.For(options.GetType()).Find(key, source);
        var t = prop.PropertyType;
        var underlying = Nullable.GetUnderlyingType(t);
        bool nullable = underlying is not null || !t.IsValueType;
        bool isNull = items is null || (t != typeof(List<string>) && items.Count == 1 && IsNullText(items[0]));
        string Bad(string what) => $"{Where(source)}option {info.Name}: '{scalar ?? string.Join(",", items ?? [])}' is not {what}.";

        if (isNull)
        {
            bool requiredText = t == typeof(string) && defaultValue is not null;
            if (!nullable || requiredText || t == typeof(List<string>))
            {
                throw new DpoSharpException($"{Where(source)}option {info.Name} needs a value (it has no 'null' setting).");
            }

            prop.SetValue(options, null);
            return;
        }

        if (t == typeof(List<string>) || t == typeof(List<double>))
        {
            var parts = items!.Count == 1 ? items[0].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) : [.. items.Select(s => s.Trim())];
            if (t == typeof(List<string>))
            {
                prop.SetValue(options, parts.ToList());
                return;
            }

            var numbers = new List<double>();
            foreach (var s in parts)
            {
                if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                {
                    throw new DpoSharpException(Bad("a comma-separated list of numbers"));
                }

                numbers.Add(v);
            }

            prop.SetValue(options, numbers);
            return;
        }

        if (items!.Count != 1)
        {
            throw new DpoSharpException($"{Where(source)}option {info.Name} takes one value, not a list.");
        }

        var text = items[0].Trim();
        var target = underlying ?? t;
        if (target == typeof(string))
        {
            prop.SetValue(options, text);
        }
        else if (target == typeof(bool))
        {
            prop.SetValue(options, text.ToLowerInvariant() switch
            {
                "true" or "yes" or "on" or "1" => true,
                "false" or "no" or "off" or "0" => false,
                _ => throw new DpoSharpException(Bad("true or false")),
            });
        }
        else if (target == typeof(int))
        {
            if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
            {
                // 1e3 or 10.0 in a YAML file: accept whole numbers written as floats.
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || d != Math.Floor(d) || Math.Abs(d) > int.MaxValue)
                {
                    throw new DpoSharpException(Bad("a whole number"));
                }

                v = (int)d;
            }

            prop.SetValue(options, v);
        }
        else if (target == typeof(double))
        {
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
            {
                throw new DpoSharpException(Bad("a number"));
            }

            prop.SetValue(options, v);
        }
        else
        {
            throw new InvalidOperationException($"option {info.Name} has unsupported type {t}");
        }
    }
}
