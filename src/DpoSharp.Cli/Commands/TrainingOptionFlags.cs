using System.CommandLine;
using System.Globalization;
using DpoSharp.Cli.Options;
using DpoSharp.Training;

namespace DpoSharp.Cli.Commands;

/// <summary>
/// <c>--config FILE</c> plus one kebab-case flag per <see cref="DpoOptions"/> entry, shared by <c>train</c> and
/// <c>sft</c>: flags override the file.
/// </summary>
internal sealed class TrainingOptionFlags
{
    private readonly Option<string?> _config;
    private readonly List<(OptionInfo Info, Option Option)> _flags = [];

    /// <summary>Adds <c>--config</c> and every option flag to <paramref name="cmd"/>.</summary>
    public TrainingOptionFlags(Command cmd, string configDescription)
    {
        _config = new Option<string?>("--config") { Description = configDescription };
        cmd.Options.Add(_config);
        foreach (var info in OptionBinder.Options<DpoOptions>())
        {
            var description = $"{info.Description} (config: {info.Name}; default: {info.Default})";
            Option option = info.Type == typeof(bool)
                ? new Option<bool>(info.Flag) { Description = description }
                : new Option<string>(info.Flag) { Description = description };
            _flags.Add((info, option));
            cmd.Options.Add(option);
        }
    }

    /// <summary>The <c>--config</c> path given, or null.</summary>
    public string? ConfigPath(ParseResult parse) => parse.GetValue(_config);

    /// <summary>The flags given on the command line, as (option name, value) pairs.</summary>
    public IEnumerable<KeyValuePair<string, string?>> GivenFlags(ParseResult parse) =>
        _flags.Where(f => parse.GetResult(f.Option) is not null)
            .Select(f => new KeyValuePair<string, string?>(f.Info.Name, f.Option is Option<bool> b
                ? parse.GetValue(b).ToString(CultureInfo.InvariantCulture).ToLowerInvariant()
                : parse.GetValue((Option<string>)f.Option)));

    /// <summary>The options: the config file (if any), then the flags (validated later, by the command).</summary>
    public DpoOptions Build(ParseResult parse) => TrainCommand.BuildOptions(ConfigPath(parse), GivenFlags(parse));
}
