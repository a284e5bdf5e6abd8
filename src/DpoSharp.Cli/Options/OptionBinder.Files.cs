using System.Globalization;
using System.Text.Json;
using DpoSharp.Training;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace DpoSharp.Cli.Options;

public static partial class OptionBinder
{
    /// <summary>
    /// Loads options from a YAML (<c>.yaml</c>, <c>.yml</c>) or JSON (<c>.json</c>) file: a flat mapping of TRL option
    /// names to values (lists as sequences or comma-separated text). Unset options keep their defaults. Throws
    /// <see cref="DpoSharpException"/> naming the file, line and key for unreadable files, unknown keys (with close
    /// names) and bad values. Does not validate: apply overrides, then call <see cref="TrainingOptions.Validate"/>.
    /// </summary>
    public static T LoadFile<T>(string path)
        where T : TrainingOptions, new()
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new DpoSharpException($"config file {path} does not exist; pass an existing .yaml or .json file.");
        }

        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DpoSharpException($"config file {path} cannot be read: {e.Message}", e);
        }

        var ext = Path.GetExtension(path).ToLowerInvariant();
        bool json = ext == ".json" || (ext is not ".yaml" and not ".yml" && text.TrimStart().StartsWith('{'));
        return json ? FromJson<T>(text, path) : FromYaml<T>(text, path);
    }

    /// <summary>Parses YAML text (<paramref name="sourceName"/> names it in errors).</summary>
    public static T FromYaml<T>(string yaml, string sourceName = "config")
        where T : TrainingOptions, new()
    {
        ArgumentNullException.ThrowIfNull(yaml);
        var options = new T();
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new DpoSharpException($"{sourceName}: line {e.Start.Line}: invalid YAML: {e.InnerException?.Message ?? e.Message}", e);
        }
        catch (InvalidOperationException e)
        {
            // YamlDotNet's representation model throws this for some malformed documents (e.g. a tag it cannot resolve).
            throw new DpoSharpException($"{sourceName}: invalid YAML ({e.Message}); the file must be a flat mapping of option names to values.", e);
        }

        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
        {
            return options;
        }

        if (stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            throw new DpoSharpException($"{sourceName}: the file must be a mapping of option names to values (e.g. 'beta: 0.1').");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (keyNode, valueNode) in root.Children)
        {
            var where = $"{sourceName}: line {keyNode.Start.Line}";
            if (keyNode is not YamlScalarNode { Value: { } key })
            {
                throw new DpoSharpException($"{where}: option names must be plain text.");
            }

            if (!seen.Add(key))
            {
                throw new DpoSharpException($"{where}: option {key} is given twice.");
            }

            switch (valueNode)
            {
                case YamlScalarNode scalar:
                    ApplyCore(options, key, [scalar.Value ?? string.Empty], where, quoted: scalar.Style != ScalarStyle.Plain);
                    break;
                case YamlSequenceNode seq:
                    var items = new List<string>();
                    foreach (var item in seq.Children)
                    {
                        if (item is not YamlScalarNode { Value: { } v })
                        {
                            throw new DpoSharpException($"{sourceName}: line {item.Start.Line}: option {key}: list items must be plain values.");
                        }

                        items.Add(v);
                    }

                    ApplyList(options, key, items, where);
                    break;
                default:
                    throw new DpoSharpException($"{where}: option {key}: nested mappings are not options; give a value or a list.");
            }
        }

        return options;
    }

    /// <summary>Parses JSON text (<paramref name="sourceName"/> names it in errors).</summary>
    public static T FromJson<T>(string json, string sourceName = "config")
        where T : TrainingOptions, new()
    {
        ArgumentNullException.ThrowIfNull(json);
        var options = new T();
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, DpoSharp.IO.JsonFile.DocumentOptions);
        }
        catch (JsonException e)
        {
            throw new DpoSharpException($"{sourceName}: line {(e.LineNumber ?? 0) + 1}: invalid JSON: {e.Message}", e);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new DpoSharpException($"{sourceName}: the file must be a JSON object of option names to values.");
            }

            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                var where = $"{sourceName}: key \"{prop.Name}\"";
                var v = prop.Value;
                switch (v.ValueKind)
                {
                    case JsonValueKind.Null:
                        ApplyCore(options, prop.Name, null, where, quoted: false);
                        break;
                    case JsonValueKind.Array:
                        ApplyList(options, prop.Name, [.. v.EnumerateArray().Select(e => JsonScalar(e, prop.Name, where))], where);
                        break;
                    default:
                        ApplyCore(options, prop.Name, [JsonScalar(v, prop.Name, where)], where, quoted: false);
                        break;
                }
            }
        }

        return options;
    }

    /// <summary>
    /// Writes the listed options as YAML that <see cref="LoadFile{T}"/> reads back (e.g.
    /// <c>output_dir/dposharp_config.yaml</c>): text quoted, enums in TRL's spelling (<c>eval_strategy: steps</c>).
    /// </summary>
    public static string ToYaml(TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var sb = new System.Text.StringBuilder();
        foreach (var (info, prop, _, _) in OptionTable.For(options.GetType()).Listed)
        {
            sb.Append(info.Name).Append(": ").Append(YamlValue(prop.GetValue(options))).Append('\n');
        }

        return sb.ToString();
    }

    private static string YamlValue(object? value) => value switch
    {
        null => "null",
        string s => YamlQuote(s),
        System.Collections.IEnumerable l => "[" + string.Join(", ", l.Cast<object?>().Select(YamlValue)) + "]",
        _ => Format(value),
    };

    private static string YamlQuote(string s) => "'" + s.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static void ApplyList(TrainingOptions options, string key, List<string> items, string where)
    {
        var (info, prop, _, _) = OptionTable.For(options.GetType()).Find(key, where);
        if (ListElement(prop.PropertyType) is null)
        {
            throw new DpoSharpException($"{where}: option {info.Name} takes one value, not a list.");
        }

        ApplyCore(options, key, items, where, quoted: false);
    }

    private static string JsonScalar(JsonElement e, string key, string where) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString() ?? string.Empty,
        JsonValueKind.Number => e.GetRawText(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => throw new DpoSharpException($"{where}: option {key}: expected a value or a list of values, not {e.ValueKind}."),
    };
}
