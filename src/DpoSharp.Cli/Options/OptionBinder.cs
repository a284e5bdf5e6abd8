using System.Collections;
using System.Globalization;
using DpoSharp.Training;

namespace DpoSharp.Cli.Options;

/// <summary>
/// Binds text to training options by name, as config files and command-line flags give them: snake_case keys in
/// config files (<c>learning_rate</c>), kebab-case flags (<c>--learning-rate</c>; TRL's <c>--learning_rate</c> is
/// accepted too). The options of a type are its public settable properties (such as
/// <see cref="TrainingOptions.LearningRate"/>; the concern objects such as <see cref="TrainingOptions.Optimizer"/> are
/// not options). Options with a fixed set of values are enums, bound from their TRL spelling
/// (<c>lr_scheduler_type: constant_with_warmup</c>) with close names suggested for typos. Load with
/// <see cref="LoadFile{T}"/>, override with <see cref="Apply(TrainingOptions, string, string?)"/>, then check with
/// <see cref="TrainingOptions.Validate"/>.
/// </summary>
public static partial class OptionBinder
{
    /// <summary>Every listed option of <typeparamref name="T"/>, in listing order (options that only error today,
    /// such as <c>padding_free</c>, are bound but not listed).</summary>
    public static IReadOnlyList<OptionInfo> Options<T>()
        where T : TrainingOptions, new() => OptionTable.For(typeof(T)).Infos;

    /// <summary>
    /// Sets one option from text, as a command-line flag does. <paramref name="key"/> is the config name or flag
    /// (<c>learning_rate</c>, <c>learning-rate</c>, <c>--learning-rate</c>, <c>--learning_rate</c>); lists are
    /// comma-separated; <c>null</c> clears an optional value; a bare boolean flag may pass <c>true</c>. Throws
    /// <see cref="DpoSharpException"/> naming the option for unknown names and unparsable values.
    /// </summary>
    public static void Apply(TrainingOptions options, string key, string? value)
    {
        ArgumentNullException.ThrowIfNull(options);
        ApplyCore(options, key, value is null ? null : [value], source: null, quoted: false);
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

    /// <summary>The listed options as an ordered name → value map (for saving next to a run).</summary>
    public static IReadOnlyDictionary<string, object?> ToDictionary(TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var d = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var entry in OptionTable.For(options.GetType()).Listed)
        {
            d[entry.Info.Name] = entry.Property.GetValue(options);
        }

        return d;
    }

    /// <summary>Snake-case config name of a PascalCase property name.</summary>
    public static string ToSnakeCase(string pascal) => OptionValues.ToSnakeCase(pascal);

    /// <summary>
    /// The type of an option as help and the README show it: <c>bool</c>, <c>int</c>, <c>float</c>, <c>str</c>,
    /// <c>list</c>, <c>choice</c> (an enum: the description lists its values), with <c>|null</c> when the option
    /// accepts <c>null</c>.
    /// </summary>
    public static string TypeName(Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        var underlying = Nullable.GetUnderlyingType(type);
        var t = underlying ?? type;
        string name = t == typeof(bool) ? "bool"
            : t == typeof(int) ? "int"
            : t == typeof(double) ? "float"
            : t == typeof(string) ? "str"
            : t.IsEnum ? "choice"
            : ListElement(t) is not null ? "list"
            : t.Name;
        return underlying is not null ? name + "|null" : name;
    }

    /// <summary>The prefix naming where a value came from, for error messages.</summary>
    internal static string Where(string? source) => source is null ? string.Empty : source + ": ";

    /// <summary>A value as option text (lists comma-separated, enums in TRL's spelling, <c>null</c> for none).</summary>
    internal static string Format(object? value) => value switch
    {
        null => "null",
        string s => s,
        bool b => b ? "true" : "false",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        Enum e => OptionValues.Name(e),
        IEnumerable l and not string => string.Join(",", l.Cast<object?>().Select(Format)),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };

    /// <summary>The element type of a <c>List&lt;T&gt;</c> option, or null.</summary>
    internal static Type? ListElement(Type t) =>
        t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>) ? t.GetGenericArguments()[0] : null;

    private static bool IsNullText(string s) => s.Trim() is "null" or "None" or "none" or "~" or "";

    /// <summary>
    /// Sets the option <paramref name="key"/> from <paramref name="items"/>: one text (a scalar, or a comma-separated
    /// list), several (a YAML/JSON list), or null (JSON null). <c>null</c> text clears an optional value unless the
    /// option's type reads it as a value (<c>report_to: none</c>) or it was <paramref name="quoted"/>.
    /// </summary>
    private static void ApplyCore(TrainingOptions options, string key, IReadOnlyList<string>? items, string? source, bool quoted)
    {
        var (info, prop, defaultValue, _) = OptionTable.For(options.GetType()).Find(key, source);
        var t = prop.PropertyType;
        var underlying = Nullable.GetUnderlyingType(t);
        var element = ListElement(t);
        var scalarType = underlying ?? element ?? t;
        bool nullable = underlying is not null || (!t.IsValueType && !(t == typeof(string) && defaultValue is not null) && t != typeof(List<string>) && !(element is { IsEnum: true }));
        string shown = items is null ? "null" : string.Join(",", items);
        string Bad(string what) => $"{Where(source)}option {info.Name}: '{shown}' is not {what}.";

        bool readsAsValue = scalarType.IsEnum && items is { Count: 1 } && OptionValues.TryParse(scalarType, items[0], out _);
        bool isNull = items is null || (!quoted && !readsAsValue && items.Count == 1 && IsNullText(items[0]));
        if (isNull)
        {
            if (!nullable)
            {
                throw new DpoSharpException($"{Where(source)}option {info.Name} needs a value (it has no 'null' setting).");
            }

            prop.SetValue(options, null);
            return;
        }

        if (element is not null)
        {
            var parts = items!.Count == 1 ? items[0].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) : [.. items.Select(s => s.Trim())];
            var list = (IList)Activator.CreateInstance(t)!;
            foreach (var part in parts)
            {
                list.Add(ParseScalar(info, element, part, source, () => Bad(element == typeof(double) ? "a comma-separated list of numbers" : "a list")));
            }

            prop.SetValue(options, list);
            return;
        }

        if (items!.Count != 1)
        {
            throw new DpoSharpException($"{Where(source)}option {info.Name} takes one value, not a list.");
        }

        prop.SetValue(options, ParseScalar(info, scalarType, items[0], source, () => Bad(scalarType == typeof(bool) ? "true or false" : scalarType == typeof(int) ? "a whole number" : "a number")));
    }

    private static object ParseScalar(OptionInfo info, Type target, string raw, string? source, Func<string> bad)
    {
        var text = raw.Trim();
        if (target == typeof(string))
        {
            return text;
        }

        if (target.IsEnum)
        {
            return OptionValues.Parse(target, text, Where(source) + info.Name);
        }

        if (target == typeof(bool))
        {
            return text.ToLowerInvariant() switch
            {
                "true" or "yes" or "on" or "1" => true,
                "false" or "no" or "off" or "0" => false,
                _ => throw new DpoSharpException(bad()),
            };
        }

        if (target == typeof(int))
        {
            if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
            {
                // 1e3 or 10.0 in a YAML file: accept whole numbers written as floats.
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || d != Math.Floor(d) || Math.Abs(d) > int.MaxValue)
                {
                    throw new DpoSharpException(bad());
                }

                v = (int)d;
            }

            return v;
        }

        if (target == typeof(double))
        {
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
            {
                throw new DpoSharpException(bad());
            }

            return v;
        }

        throw new InvalidOperationException($"option {info.Name} has unsupported type {target}");
    }
}
