namespace DpoSharp.Cli.Options;

/// <summary>One option: its config key, CLI flag, type, default and help.</summary>
/// <param name="Name">Config key, snake_case (<c>learning_rate</c>).</param>
/// <param name="Flag">Command-line flag, kebab-case (<c>--learning-rate</c>).</param>
/// <param name="Type">Type of the property the option sets.</param>
/// <param name="Default">Default value as text (lists comma-separated, <c>null</c> for none).</param>
/// <param name="Description">One-line help.</param>
public sealed record OptionInfo(string Name, string Flag, Type Type, string Default, string Description);
