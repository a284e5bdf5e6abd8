using System.CommandLine;
using DpoSharp.Cli.Options;
using DpoSharp.Training;

namespace DpoSharp.Cli.Commands;

/// <summary>
/// <c>--config FILE</c> plus one kebab-case flag per listed option of <typeparamref name="T"/> (<see cref="DpoOptions"/>
/// for <c>train</c>, <see cref="SftOptions"/> for <c>sft</c>), each also accepted in TRL's snake_case
/// (<c>--learning_rate</c>, a hidden alias). Flags override the file, and only the flags actually typed count: an
/// option not given keeps the file's value (or the default).
/// </summary>
/// <remarks>
/// System.CommandLine gives every <c>Option&lt;bool&gt;</c> an implicit result (value false) when it is not typed, so a
/// flag counts only when its result is not <see cref="System.CommandLine.Parsing.SymbolResult"/>-implicit; reading
/// every result with a value made each boolean the config file sets false again (and recorded
/// <c>disable_dropout: false</c>).
/// </remarks>
/// <typeparam name="T">The options type.</typeparam>
internal sealed class TrainingOptionFlags<T>
    where T : TrainingOptions, new()
{
    private readonly Option<string?> _config;
    private readonly List<(OptionInfo Info, Option[] Spellings)> _flags = [];

    /// <summary>Adds <c>--config</c>, <paramref name="commandOptions"/> (flags of the command that are not options of
    /// <typeparamref name="T"/>) and every option flag with its snake_case alias to <paramref name="cmd"/>.</summary>
    public TrainingOptionFlags(Command cmd, string configDescription, params Option[] commandOptions)
    {
        _config = new Option<string?>("--config") { Description = configDescription, HelpName = "file" };
        cmd.Options.Add(_config);
        foreach (var o in commandOptions)
        {
            cmd.Options.Add(o);
        }

        // Options that only error today (padding_free) are hidden, not unknown: giving one reports its own message.
        foreach (var (info, _, _, listed) in OptionTable.For(typeof(T)).Entries)
        {
            // The kebab-case flag is listed; TRL's snake_case spelling and the aliases (both spellings) are hidden.
            var names = new[] { info.Name }.Concat(info.Aliases)
                .SelectMany(n => new[] { "--" + n.Replace('_', '-'), "--" + n })
                .Distinct(StringComparer.Ordinal)
                .ToList();
            var spellings = names.Select(n => Create(info, n, hidden: !listed || n != info.Flag)).ToArray();
            _flags.Add((info, spellings));
            foreach (var spelling in spellings)
            {
                cmd.Options.Add(spelling);
            }
        }
    }

    /// <summary>The <c>--config</c> path given, or null.</summary>
    public string? ConfigPath(ParseResult parse) => parse.GetValue(_config);

    /// <summary>The option flags typed on the command line (kebab-case or snake_case), as (option name, value) pairs.
    /// Throws <see cref="DpoSharpException"/> for an option given in both spellings.</summary>
    public IReadOnlyList<KeyValuePair<string, string?>> GivenFlags(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var given = new List<KeyValuePair<string, string?>>();
        foreach (var (info, spellings) in _flags)
        {
            var typed = spellings.Where(o => parse.GetResult(o) is { Implicit: false }).ToList();
            if (typed.Count > 1)
            {
                throw new DpoSharpException($"option {info.Flag} is given twice (as {string.Join(" and ", typed.Select(o => o.Name))}); give it once.");
            }

            if (typed.Count == 1)
            {
                given.Add(new(info.Name, typed[0] is Option<bool> b
                    ? (parse.GetValue(b) ? "true" : "false")
                    : parse.GetValue((Option<string>)typed[0])));
            }
        }

        return given;
    }

    /// <summary>The options: the config file (if any), then <paramref name="flags"/> in order. Not yet validated.</summary>
    public static T Build(string? configPath, IEnumerable<KeyValuePair<string, string?>> flags)
    {
        var options = configPath is null ? new T() : OptionBinder.LoadFile<T>(configPath);
        OptionBinder.Apply(options, flags);
        return options;
    }

    // A bool? option (null: decided from other options) is a switch too: a bare flag sets true.
    private static Option Create(OptionInfo info, string name, bool hidden) => info.Type == typeof(bool) || info.Type == typeof(bool?)
        ? new Option<bool>(name) { Description = info.HelpText, Hidden = hidden }
        : new Option<string>(name) { Description = info.HelpText, HelpName = info.TypeName, Hidden = hidden };
}

/// <summary>The inputs a training command cannot run without.</summary>
internal static class RequiredInputs
{
    /// <summary>
    /// Throws <see cref="DpoSharpException"/> naming every input of <paramref name="inputs"/> that is not set (its flag,
    /// how to give it, its config key), before anything is checked or written; <paramref name="note"/> ends the message.
    /// </summary>
    public static void ThrowIfMissing(string command, string note, params (string Flag, string? Value, string Give)[] inputs)
    {
        var missing = inputs.Where(i => i.Value is null).ToList();
        if (missing.Count > 0)
        {
            throw new DpoSharpException(
                $"{command}: {string.Join(" and ", missing.Select(m => m.Flag))} {(missing.Count == 1 ? "is" : "are")} not set: " +
                $"give {string.Join(" and ", missing.Select(m => m.Give))} (or {string.Join(" / ", missing.Select(m => $"'{m.Flag[2..]}:'"))} in --config).{note}");
        }
    }
}
