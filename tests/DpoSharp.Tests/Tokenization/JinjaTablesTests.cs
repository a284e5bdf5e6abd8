using DpoSharp.Tokenization.ChatTemplates;

namespace DpoSharp.Tests.Tokenization;

/// <summary>The name → function tables of the template engine: exactly the filters, tests and string methods the
/// evaluator supports, and unknown names still fail with the engine's messages.</summary>
public sealed class JinjaTablesTests
{
    private static readonly string[] Filters =
    [
        "trim", "length", "count", "tojson", "upper", "lower", "capitalize", "title", "default", "d", "join", "first",
        "last", "string", "int", "float", "abs", "replace", "items", "list", "reverse", "unique", "sort", "selectattr",
        "rejectattr", "select", "reject", "map", "min", "max", "sum", "round", "indent", "safe", "wordcount",
    ];

    private static readonly string[] Tests =
    [
        "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "true", "false", "mapping",
        "sequence", "iterable", "callable", "even", "odd", "divisibleby", "eq", "equalto", "==", "ne", "!=", "lt",
        "lessthan", "le", "gt", "greaterthan", "ge", "in", "sameas", "lower", "upper",
    ];

    private static readonly string[] StringMethods =
    [
        "strip", "lstrip", "rstrip", "lower", "upper", "title", "capitalize", "startswith", "endswith", "split", "rsplit",
        "splitlines", "replace", "find", "rfind", "count", "join", "isdigit", "isspace", "format",
    ];

    [Fact]
    public void FilterTableHoldsEveryFilter()
    {
        Assert.Equal(Filters.Order(StringComparer.Ordinal), JinjaFilters.All.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void TestTableHoldsEveryTest()
    {
        Assert.Equal(Tests.Order(StringComparer.Ordinal), JinjaTests.All.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void StringMethodTableHoldsEveryMethod()
    {
        Assert.Equal(StringMethods.Order(StringComparer.Ordinal), JinjaMethods.StringMethods.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void EveryFilterDispatchesFromATemplate()
    {
        // Each name parses and reaches its filter: a filter may reject the value, but never as an unknown filter.
        foreach (var name in Filters)
        {
            var e = Record.Exception(() => ChatTemplate.Parse($"{{{{ ['a'] | {name} }}}}").Render(new Dictionary<string, object?>()));
            Assert.False(e?.Message.Contains("unsupported filter", StringComparison.Ordinal) ?? false, $"|{name}: {e?.Message}");
        }
    }

    [Theory]
    [InlineData("{{ 'x' | nope }}", "Chat template: unsupported filter '|nope' at line 1, column 8.")]
    [InlineData("{{ 1 is nope }}", "Chat template: unsupported test 'is nope' at line 1, column 6.")]
    [InlineData("{{ 'x'.nope() }}", "Chat template: unsupported string method 'nope()' at line 1, column 12.")]
    [InlineData("{{ {}.nope() }}", "Chat template: unsupported dict method 'nope()' at line 1, column 11.")]
    [InlineData("{{ [].append(1) }}", "Chat template: unsupported list method 'append()' (templates are immutable, as in Hugging Face's sandbox) at line 1, column 13.")]
    public void UnknownNamesKeepTheirMessages(string template, string message)
    {
        var e = Assert.Throws<DpoSharpException>(() => ChatTemplate.Parse(template).Render(new Dictionary<string, object?>()));
        Assert.Equal(message, e.Message);
    }
}
