using DpoSharp.Training;

namespace DpoSharp.Cli.Options;

public static partial class OptionBinder
{
    /// <summary>
    /// Turns command-line tokens into overrides of <typeparamref name="T"/>'s options: <c>--learning-rate 5e-7</c>,
    /// <c>--learning-rate=5e-7</c>, and for boolean options a bare <c>--resume</c> (= true). <c>--config</c> is not
    /// an option and is rejected here: handle it first. Throws <see cref="DpoSharpException"/> for unknown flags (with
    /// close names) and missing values.
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, string?>> ParseArguments<T>(IReadOnlyList<string> args)
        where T : TrainingOptions, new()
    {
        ArgumentNullException.ThrowIfNull(args);
        var table = OptionTable.For(typeof(T));
        var result = new List<KeyValuePair<string, string?>>();
        for (int i = 0; i < args.Count; i++)
        {
            var token = args[i];
            if (!token.StartsWith("--", StringComparison.Ordinal))
            {
                throw new DpoSharpException($"unexpected argument '{token}'; options are spelled --name value (e.g. --learning-rate 5e-7).");
            }

            string name = token;
            string? value = null;
            int eq = token.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                name = token[..eq];
                value = token[(eq + 1)..];
            }

            var info = table.Find(name, null).Info;
            if (value is null)
            {
                bool isBool = info.Type == typeof(bool);
                bool nextIsValue = i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal);
                if (isBool && (!nextIsValue || !IsBoolText(args[i + 1])))
                {
                    value = "true";
                }
                else if (nextIsValue)
                {
                    value = args[++i];
                }
                else
                {
                    throw new DpoSharpException($"option {info.Flag} needs a value.");
                }
            }

            result.Add(new(info.Name, value));
        }

        return result;
    }

    /// <summary>
    /// Options from an optional config file, then <paramref name="overrides"/> (flags win), validated: what
    /// <c>dposharp train --config FILE --flag value …</c> runs with.
    /// </summary>
    public static T Load<T>(string? configPath, IEnumerable<KeyValuePair<string, string?>>? overrides = null)
        where T : TrainingOptions, new()
    {
        var options = configPath is null ? new T() : LoadFile<T>(configPath);
        if (overrides is not null)
        {
            Apply(options, overrides);
        }

        options.Validate();
        return options;
    }

    private static bool IsBoolText(string s) => s.Trim().ToLowerInvariant() is "true" or "false" or "yes" or "no" or "on" or "off" or "1" or "0";
}
