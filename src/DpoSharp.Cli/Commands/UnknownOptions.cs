using System.CommandLine;

namespace DpoSharp.Cli.Commands;

/// <summary>Parse errors for unknown options, with the closest options of the command (<c>--max-step</c> → "Did you
/// mean --max-steps?"), in place of System.CommandLine's "Unrecognized command or argument".</summary>
internal static class UnknownOptions
{
    /// <summary>
    /// The error lines for <paramref name="parse"/>: one per unknown option (with close names), then the other parse
    /// errors, leaving out the values that followed an unknown option.
    /// </summary>
    public static IReadOnlyList<string> Describe(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var unmatched = parse.UnmatchedTokens;
        var unknown = unmatched.Where(t => t.StartsWith("--", StringComparison.Ordinal) || (t.Length > 1 && t[0] == '-' && char.IsLetter(t[1]))).ToList();
        var lines = new List<string>();
        if (unknown.Count > 0)
        {
            var command = parse.CommandResult.Command;
            var names = command.Options.Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name)).Where(n => n.StartsWith("--", StringComparison.Ordinal)).ToList();
            foreach (var token in unknown)
            {
                var name = token.Split('=', 2)[0];
                var close = NameSuggestions.Closest(name, names);
                var hint = close.Count > 0 ? $" Did you mean {string.Join(" or ", close)}?" : string.Empty;
                lines.Add($"unknown option '{name}' for dposharp {command.Name}.{hint} See 'dposharp {command.Name} --help'.");
            }
        }

        foreach (var e in parse.Errors)
        {
            if (unknown.Count > 0 && unmatched.Any(t => e.Message.Contains($"'{t}'", StringComparison.Ordinal)))
            {
                continue;
            }

            lines.Add(DpoSharpCli.FriendlyTypeNames(e.Message));
        }

        return lines;
    }
}
