using System.Collections.Concurrent;
using System.ComponentModel;
using System.Reflection;

namespace DpoSharp.Cli.Options;

/// <summary>
/// The options of one options type: its public settable (flat) properties, in <see cref="OptionOrder"/>, with their
/// config names, flags, defaults and help. Help comes from the property's <see cref="DescriptionAttribute"/>, or from
/// that of the same-named property of one of the type's concern objects (its get-only properties such as
/// <c>Optimizer</c>), which the flat property forwards to. An option marked <c>[Browsable(false)]</c> there (one that
/// only errors today, such as <c>padding_free</c>) is still bound, so giving it reports the option's own message,
/// but it is not listed (help, README table, saved config).
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
            var help = Attribute<DescriptionAttribute>(p, concerns)?.Description ?? string.Empty;
            var value = p.GetValue(defaults);
            bool listed = Attribute<BrowsableAttribute>(p, concerns)?.Browsable ?? true;
            var aliases = p.GetCustomAttribute<OptionAliasAttribute>()?.Names ?? [];
            if (aliases.Count > 0)
            {
                help += $" (alias: {string.Join(", ", aliases.Select(a => "--" + a.Replace('_', '-')))})";
            }

            entries.Add(new Entry(new OptionInfo(name, "--" + name.Replace('_', '-'), p.PropertyType, OptionBinder.Format(value), help, aliases), p, value, listed));
        }

        Entries = entries;
        Listed = [.. entries.Where(e => e.Listed)];
        Infos = [.. Listed.Select(e => e.Info)];
    }

    /// <summary>The options type.</summary>
    public Type Type { get; }

    /// <summary>Every option, in listing order (listed or not).</summary>
    public IReadOnlyList<Entry> Entries { get; }

    /// <summary>The listed options (help, README table, saved config), in listing order.</summary>
    public IReadOnlyList<Entry> Listed { get; }

    /// <summary>The listed options' descriptions, in listing order.</summary>
    public IReadOnlyList<OptionInfo> Infos { get; }

    /// <summary>The table of <paramref name="type"/> (built once).</summary>
    public static OptionTable For(Type type) => Cache.GetOrAdd(type, t => new OptionTable(t));

    /// <summary>
    /// The option <paramref name="key"/> names: its config name or flag, with or without <c>--</c>, in kebab-case or
    /// TRL's snake_case (<c>--learning-rate</c> = <c>--learning_rate</c> = <c>learning_rate</c>). Throws
    /// <see cref="DpoSharpException"/> with the closest listed options for unknown ones, spelled as
    /// <paramref name="key"/> is (a flag suggests flags); <paramref name="source"/> prefixes the message.
    /// </summary>
    public Entry Find(string key, string? source)
    {
        ArgumentNullException.ThrowIfNull(key);
        var name = key.Trim().TrimStart('-').Replace('-', '_');
        foreach (var entry in Entries)
        {
            if (string.Equals(entry.Info.Name, name, StringComparison.Ordinal) || entry.Info.Aliases.Contains(name, StringComparer.Ordinal))
            {
                return entry;
            }
        }

        bool flag = key.TrimStart().StartsWith("--", StringComparison.Ordinal);
        var close = NameSuggestions.Closest(name, Listed.Select(o => o.Info.Name));
        var hint = close.Count > 0
            ? $" Did you mean {string.Join(" or ", close.Select(c => flag ? "--" + c.Replace('_', '-') : c))}?"
            : " See the Configuration section of the README for every option.";
        throw new DpoSharpException($"{OptionBinder.Where(source)}unknown option '{key}'.{hint}");
    }

    /// <summary>The attribute on <paramref name="p"/>, or on the same-named property of a concern it forwards to.</summary>
    private static TAttribute? Attribute<TAttribute>(PropertyInfo p, IReadOnlyList<PropertyInfo> concerns)
        where TAttribute : Attribute
    {
        if (p.GetCustomAttribute<TAttribute>() is { } own)
        {
            return own;
        }

        foreach (var concern in concerns)
        {
            if (concern.PropertyType.GetProperty(p.Name, BindingFlags.Public | BindingFlags.Instance)?.GetCustomAttribute<TAttribute>() is { } forwarded)
            {
                return forwarded;
            }
        }

        return null;
    }

    /// <summary>One option.</summary>
    /// <param name="Info">Name, flag, type, default and help.</param>
    /// <param name="Property">The property it sets.</param>
    /// <param name="DefaultValue">Its value in a new options object.</param>
    /// <param name="Listed">Shown in help, the README table and saved configs.</param>
    internal sealed record Entry(OptionInfo Info, PropertyInfo Property, object? DefaultValue, bool Listed);
}
