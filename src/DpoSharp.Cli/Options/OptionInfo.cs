namespace DpoSharp.Cli.Options;

/// <summary>One option: its config key, CLI flag, type, default and help.</summary>
/// <param name="Name">Config key, snake_case (<c>learning_rate</c>).</param>
/// <param name="Flag">Command-line flag, kebab-case (<c>--learning-rate</c>; <c>--learning_rate</c> is accepted too).</param>
/// <param name="Type">Type of the property the option sets.</param>
/// <param name="Default">Default value as text (lists comma-separated, enums in TRL's spelling, <c>null</c> for none).</param>
/// <param name="Description">One-line help (ending with the aliases, as <c>(alias: --lora)</c>).</param>
/// <param name="Aliases">Other snake_case names the option answers to (<see cref="OptionAliasAttribute"/>).</param>
public sealed record OptionInfo(string Name, string Flag, Type Type, string Default, string Description, IReadOnlyList<string> Aliases)
{
    /// <summary>The type as help and the README show it (<see cref="OptionBinder.TypeName"/>).</summary>
    public string TypeName => OptionBinder.TypeName(Type);

    /// <summary>The line <c>--help</c> shows for the option after its flag: description, config name, default.</summary>
    public string HelpText => $"{Description} (config: {Name}; default: {Default})";
}
