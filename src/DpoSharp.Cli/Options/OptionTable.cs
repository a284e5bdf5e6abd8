using System.Collections.Concurrent;
using System.ComponentModel;
using System.Reflection;

namespace DpoSharp.Cli.Options;

/// <summary>
/// The options of one options type: its public settable (flat) properties, in <see cref="OptionOrder"/>, with their
/// config names, flags, defaults and help. Help comes from the property's <see cref="DescriptionAttribute"/>, or from
/// that of the same-named property of one of the type's concern objects (its get-only properties such as
/// <c>Optimizer</c>), which the flat property forwards to.
/// </summary>
internal sealed class OptionTable
{
    private static readonly ConcurrentDictionary<Type, OptionTable> Cache = new();

    private OptionTable(Type type)
    {
        Type = type;
        var defaults = Activator.CreateInstance(type) ?? throw new InvalidOperationException($"cannot create {type}");
        var all = type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.GetIndexParameters().Length == 0).ToList();
        var settable = all.Where(p => p.CanWrite && p.GetSetMethod() is not null).ToList();
        var concerns = all.Where(p => p.GetSetMethod() is null && p.PropertyType.IsClass && p.PropertyType != typeof(string)).ToList();
        var entries = new List<Entry>();
        foreach (var p in OptionOrder.Sort(type, settable))
        {
            var name = OptionBinder.ToSnakeCase(p.Name);
            var help = Description(p, concerns);
            var value = p.GetValue(defaults);
            entries.Add(new Entry(new OptionInfo(name, "--" + name.Replace('_', '-'), p.PropertyType, OptionBinder.Format(value), help), p, value));
        }

        Entries = entries;
        Infos = [.. entries.Select(e => e.Info)];
    }

    /// <summary>The options type.</summary>
    public Type Type { get; }

    /// <summary>Every option, in listing order.</summary>
    public IReadOnlyList<Entry> Entries { get; }

    /// <summary>Every option's description, in listing order.</summary>
    public IReadOnlyList<OptionInfo> Infos { get; }

    /// <summary>The table of <paramref name="type"/> (built once).</summary>
    public static OptionTable For(Type type) => Cache.GetOrAdd(type, t => new OptionTable(t));

    /// <summary>
    /// The option <paramref name="key"/> names (config name or flag, with or without <c>--</c>); throws
    /// <see cref="DpoSharpException"/> with close names for unknown ones (<paramref name="source"/> prefixes the message).
    /// </summary>
    public Entry Find(string key, string? source)
    {
        ArgumentNullException.ThrowIfNull(key);
        var name = key.Trim().TrimStart('-').Replace('-', '_');
        foreach (var entry in Entries)
        {
            if (string.Equals(entry.Info.Name, name, StringComparison.Ordinal))
            {
                return entry;
            }
        }

        var close = NameSuggestions.Closest(name, Entries.Select(o => o.Info.Name));
        var hint = close.Count > 0 ? $" Did you mean {string.Join(" or ", close)}?" : " See the Configuration section of the README for every option.";
        throw new DpoSharpException($"{OptionBinder.Where(source)}unknown option '{key}'.{hint}");
    }

    private static string Description(PropertyInfo p, IReadOnlyList<PropertyInfo> concerns)
    {
        if (p.GetCustomAttribute<DescriptionAttribute>() is { } own)
        {
            return own.Description;
        }

        foreach (var concern in concerns)
        {
            if (concern.PropertyType.GetProperty(p.Name, BindingFlags.Public | BindingFlags.Instance)?.GetCustomAttribute<DescriptionAttribute>() is { } forwarded)
            {
                return forwarded.Description;
            }
        }

        return string.Empty;
    }

    /// <summary>One option.</summary>
    /// <param name="Info">Name, flag, type, default and help.</param>
    /// <param name="Property">The property it sets.</param>
    /// <param name="DefaultValue">Its value in a new options object.</param>
    internal sealed record Entry(OptionInfo Info, PropertyInfo Property, object? DefaultValue);
}
