namespace DpoSharp;

/// <summary>
/// Other names an option answers to (snake_case, as in config files): a shorter flag (<c>lora</c> for
/// <c>use_peft</c>) or another tool's spelling. The option is listed under its own name; an alias is accepted
/// wherever the name is (config keys, <c>--flag</c>, <c>--flag_name</c>).
/// </summary>
/// <param name="names">The aliases, snake_case.</param>
[AttributeUsage(AttributeTargets.Property, AllowMultiple = false)]
public sealed class OptionAliasAttribute(params string[] names) : Attribute
{
    /// <summary>The aliases, snake_case.</summary>
    public IReadOnlyList<string> Names { get; } = names;
}
